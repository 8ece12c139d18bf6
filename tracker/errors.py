"""The one exception type a user can cause.

Every error a user can trigger (missing file, wrong keypoint count, unreadable video, camera
not found, model/object mismatch) is raised as :class:`KptrackError` with a message that
names the file or argument and says how to fix it. The CLI prints the message alone, with no
traceback, and exits with status 2.
"""


class KptrackError(Exception):
    """A problem with the user's input, with a message naming the file/argument and the fix."""
