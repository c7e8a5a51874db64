"""The test Hub moved to tests/hubtest/ (see its README.md); this name stays for bench/ and old imports."""

from hubtest import LFS_THRESHOLD, Faults, HubServer, Logged, Repo  # noqa: F401
