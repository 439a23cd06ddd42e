#!/usr/bin/env python3
"""Runs COMMAND where no user namespace can be made, as on clusters that turn them off (or under
container runtimes' default seccomp profiles): a seccomp filter, inherited by everything COMMAND
starts, answers unshare(2) and clone(2) with CLONE_NEWUSER with EPERM, and clone3(2) with ENOSYS
(so that callers fall back to clone). Installed as root, so no_new_privs stays off and setuid
helpers such as fusermount3 keep working below it.

    no_userns.py COMMAND [ARGS...]
"""
import ctypes
import os
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
NR_CLONE, NR_UNSHARE, NR_CLONE3 = 56, 272, 435
CLONE_NEWUSER = 0x10000000
LD_ABS_W, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38

# (code, jt, jf, k); a jump goes to the next instruction + jt (or + jf).
program = [
    (LD_ABS_W, 0, 0, 4),  # 0: architecture
    (JEQ_K, 0, 9, AUDIT_ARCH_X86_64),  # 1: other architectures: allow (11)
    (LD_ABS_W, 0, 0, 0),  # 2: syscall number
    (JEQ_K, 0, 1, NR_CLONE3),  # 3
    (RET_K, 0, 0, ERRNO | ENOSYS),  # 4: clone3: use clone
    (JEQ_K, 2, 0, NR_UNSHARE),  # 5: unshare: check its flags (8)
    (JEQ_K, 1, 0, NR_CLONE),  # 6: clone: check its flags (8)
    (RET_K, 0, 0, ALLOW),  # 7
    (LD_ABS_W, 0, 0, 16),  # 8: args[0], low 32 bits
    (JSET_K, 0, 1, CLONE_NEWUSER),  # 9
    (RET_K, 0, 0, ERRNO | EPERM),  # 10: a new user namespace: refused
    (RET_K, 0, 0, ALLOW),  # 11
]

if os.uname().machine == "x86_64":
    filters = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(filters)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Fprog(len(program), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        sys.exit(f"no_userns.py: prctl failed: {os.strerror(ctypes.get_errno())}")
else:
    sys.exit("no_userns.py: only x86_64 is supported")

os.execvp(sys.argv[1], sys.argv[1:])
