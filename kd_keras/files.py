"""Files written whole or not at all: a temporary file of this process, then a rename.

Examples:
    >>> from kd_keras.files import write_json
    >>> write_json("runs/example/config.json", {"seed": 0})
    >>> print(open("runs/example/config.json").read().strip())
    {
      "seed": 0
    }
"""

import hashlib
import json
import os


def replace_atomically(path, write, suffix=".tmp"):
    """``write(tmp)`` into a temporary file of this process, then renamed to ``path``.

    Readers never see half a file, and a failed write (a full disk) leaves no partial file.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}{suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Writes ``text`` through a temporary file and a rename, so readers never see half a file."""
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            f.write(text)

    replace_atomically(path, write)


def write_json(path, obj):
    """``obj`` as indented JSON with sorted keys, written atomically (:func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_of(path):
    """The SHA-256 of the file at ``path``, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
