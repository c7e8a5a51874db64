"""A local Hub for tests and benchmarks: see README.md in this folder.

`HubServer` (server.py) holds the repos, the request log and the switches; `routes.py` answers
HTTP as the Hub and its storage host do; `faults.py` says which of the Hub's real-world answers
the next requests get (redirects without X-Linked-Size, short, empty or whole-body range answers,
expiring signed URLs, fixed-window rate limits)."""

from hubtest.clock import VirtualClock
from hubtest.faults import Faults
from hubtest.server import LFS_THRESHOLD, HubServer, Logged, Repo

__all__ = ["Faults", "HubServer", "LFS_THRESHOLD", "Logged", "Repo", "VirtualClock"]
