"""Errors the library raises; the CLI turns each into one line and the exit code below."""


class NegmineError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 1
    resumable = False      # True: a run stopped by it keeps its staging folder for --resume


class SourceNotFound(NegmineError):
    """A source (folder, repo, revision, split, column) does not exist."""

    exit_code = 4


class HubUnavailable(NegmineError):
    """The Hub could not be reached (offline mode, DNS, network, 5xx after retries)."""

    exit_code = 5
    resumable = True


class HubRateLimited(HubUnavailable):
    """The Hub kept answering 429 (rate limited) after every wait it asked for."""

    exit_code = 7


class HubAuthError(NegmineError):
    """The repo is gated or private and no usable token was found, or the Hub refused the token."""

    exit_code = 6


class InterruptedEarly(NegmineError):
    """Ctrl-C before anything was written (while planning): there is nothing to resume."""

    exit_code = 130


class PoolTooSmall(NegmineError):
    """The pool cannot supply the requested number of negatives after filtering."""

    exit_code = 3

    def __init__(self, message: str, available: int, needed: int):
        super().__init__(message)
        self.available = available
        self.needed = needed


class UnlabelledPool(NegmineError):
    """A pool (or a source of one) carries no labels, so the class checks cannot keep the positives
    out of it; refused unless it is labelled, checked by content, or accepted with --allow-unlabelled."""

    exit_code = 1
