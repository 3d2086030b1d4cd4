"""A seccomp-BPF deny-list written by hand (no libseccomp), installed in the job process.

Denied with EPERM: new processes (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``;
``clone3`` gets ENOSYS so glibc falls back to ``clone`` for threads), ``execve``, sockets,
signals to other processes (``kill``, ``tkill``, ``tgkill``, pidfd, sigqueue), ``ptrace`` and
cross-process memory access, namespaces and mounts, BPF, perf, keyrings, io_uring and module,
clock, reboot and swap calls. Any other architecture than the one the filter was built for,
and the x32 ABI, kill the process. Threads keep working (they are bounded by RLIMIT_NPROC).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_RET_KILL_PROCESS, _RET_ALLOW = 0x80000000, 0x7FFF0000
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000

# name -> number, per architecture (x86_64 and aarch64)
_ARCHES = {
    "x86_64": (
        0xC000003E,
        {
            "fork": 57,
            "vfork": 58,
            "execve": 59,
            "execveat": 322,
            "socket": 41,
            "socketpair": 53,
            "connect": 42,
            "bind": 49,
            "listen": 50,
            "accept": 43,
            "accept4": 288,
            "kill": 62,
            "tkill": 200,
            "tgkill": 234,
            "rt_sigqueueinfo": 129,
            "rt_tgsigqueueinfo": 297,
            "pidfd_open": 434,
            "pidfd_send_signal": 424,
            "pidfd_getfd": 438,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "process_madvise": 440,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "unshare": 272,
            "setns": 308,
            "bpf": 321,
            "perf_event_open": 298,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "userfaultfd": 323,
            "reboot": 169,
            "swapon": 167,
            "swapoff": 168,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
            "kexec_load": 246,
            "kexec_file_load": 320,
            "open_by_handle_at": 304,
            "iopl": 172,
            "ioperm": 173,
            "settimeofday": 164,
            "clock_settime": 227,
            "adjtimex": 159,
            "syslog": 103,
            "mknod": 133,
            "mknodat": 259,
            "personality": 135,
            "acct": 163,
            "fsopen": 430,
            "fsmount": 432,
            "move_mount": 429,
            "open_tree": 428,
            "mount_setattr": 442,
        },
        {"clone": 56, "clone3": 435},
    ),
    "aarch64": (
        0xC00000B7,
        {
            "execve": 221,
            "execveat": 281,
            "socket": 198,
            "socketpair": 199,
            "connect": 203,
            "bind": 200,
            "listen": 201,
            "accept": 202,
            "accept4": 242,
            "kill": 129,
            "tkill": 130,
            "tgkill": 131,
            "rt_sigqueueinfo": 138,
            "rt_tgsigqueueinfo": 240,
            "pidfd_open": 434,
            "pidfd_send_signal": 424,
            "pidfd_getfd": 438,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "process_madvise": 440,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "unshare": 97,
            "setns": 268,
            "bpf": 280,
            "perf_event_open": 241,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "userfaultfd": 282,
            "reboot": 142,
            "swapon": 224,
            "swapoff": 225,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
            "kexec_load": 104,
            "kexec_file_load": 294,
            "open_by_handle_at": 265,
            "settimeofday": 170,
            "clock_settime": 112,
            "adjtimex": 171,
            "syslog": 116,
            "mknodat": 33,
            "personality": 92,
            "acct": 89,
            "fsopen": 430,
            "fsmount": 432,
            "move_mount": 429,
            "open_tree": 428,
            "mount_setattr": 442,
        },
        {"clone": 220, "clone3": 435},
    ),
}


def supported() -> bool:
    return platform.machine() in _ARCHES


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def build_filter(allow_exec: bool = False) -> bytes:
    """The BPF program (raw ``sock_filter`` array) for this machine's architecture."""
    arch_id, deny, special = _ARCHES[platform.machine()]
    nrs = sorted({nr for name, nr in deny.items() if not (allow_exec and name.startswith("execve"))})
    eperm = 0x00050000 | errno.EPERM
    prog = [
        _ins(_LD_W_ABS, 4),  # seccomp_data.arch
        _ins(_JEQ, arch_id, 1, 0),
        _ins(_RET, _RET_KILL_PROCESS),
        _ins(_LD_W_ABS, 0),  # seccomp_data.nr
        _ins(_JGE, _X32_BIT, 0, 1),
        _ins(_RET, _RET_KILL_PROCESS),
        _ins(_JEQ, special["clone3"], 0, 1),
        _ins(_RET, 0x00050000 | errno.ENOSYS),
        _ins(_JEQ, special["clone"], 0, 4),
        _ins(_LD_W_ABS, 16),  # low half of args[0] (clone flags), little endian
        _ins(_JSET, _CLONE_THREAD, 0, 1),
        _ins(_RET, _RET_ALLOW),
        _ins(_RET, eperm),
    ]
    for nr in nrs:  # each: if nr == k: return EPERM
        prog += [_ins(_JEQ, nr, 0, 1), _ins(_RET, eperm)]
    prog.append(_ins(_RET, _RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(allow_exec: bool = False) -> None:
    """Install the filter on the calling thread's process for good (sets ``no_new_privs``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prog = build_filter(allow_exec)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(SECCOMP) failed")
