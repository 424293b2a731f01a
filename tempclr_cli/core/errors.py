"""Errors a user can fix. The CLI prints them as one line and exits with `exit_code`."""


class TempclrError(Exception):
    """Bad input or configuration: the message names the file/field and what to do."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
