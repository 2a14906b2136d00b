"""Peak memory of one step, shared by the benchmarks in this folder.

On CUDA: torch's peak allocation. On CPU (Linux only): the peak resident set VmHWM of /proc/self/status,
restarted from the current resident set by writing 5 to /proc/self/clear_refs. A benchmark calls
`reset_peak` just before the measured step (it returns the memory in use then) and `peak_bytes` after it;
the difference is what the step added over its inputs.
"""


def status_kib(key: str) -> int:
    "A field of /proc/self/status in KiB (VmRSS, VmHWM, ...)."
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(f'{key} is not a field of /proc/self/status')


def reset_peak(device) -> int:
    "Start a fresh peak on `device`; return the memory in use now (bytes)."
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    with open('/proc/self/clear_refs', 'w') as handle:   # VmHWM := VmRSS
        handle.write('5')
    return status_kib('VmRSS') * 1024


def peak_bytes(device) -> int:
    "The peak since the last `reset_peak` (bytes)."
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return status_kib('VmHWM') * 1024
