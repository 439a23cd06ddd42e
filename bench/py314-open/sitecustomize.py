# Put on PYTHONPATH by bench.py: emulates on Python < 3.14 what 3.14's importer does, opening code
# files unbuffered so that open() never asks isatty(), an ioctl(TCGETS) the kernel forwards to the
# FUSE daemon for every module file (1,347 per import of the reference stack; 66 with this).
import _io

_io.open_code = lambda path: _io.FileIO(path, "rb")
