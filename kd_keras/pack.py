"""A dataset packed into size-capped shards, to carry to a machine: ``kd-keras pack``.

A GPU machine reached through a channel that carries at most so many MiB a call cannot
take the image folder as it is (the shared Dogs vs. Cats is 157 MB of JPEGs). A pack
holds each image as the input pipeline sees it at one size (``N x N``, nearest-neighbour,
as :func:`kd_keras.input_pipeline.nearest_resize`), re-encoded (WebP or JPEG), with its
split and class, in tar shards of at most ``max_mib`` MiB, and ``pack.json``: the
dataset's name, classes, counts, and each shard's size and SHA-256.

``--data-dir PACK`` and ``kd-keras data PACK`` read a pack like the original folder: on
first use its shards are checked and unpacked into the runs folder's cache (never into
the pack), as ``<name>/{train,valid,test}/<class>/*.webp``.

Examples:
    >>> from kd_keras import data, sources
    >>> folder = sources.resolve_source("synthetic:2:10", "runs/.cache")
    >>> manifest = pack(folder, "packed", image_size=16, max_mib=1, log=lambda *_: None)
    >>> [shard["images"] for shard in manifest["shards"]]
    [20]
    >>> data.scan(sources.resolve_source("packed", "runs/.cache")).counts() == data.scan(folder).counts()
    True
"""

import concurrent.futures
import io
import json
import logging
import os
import re
import shutil
import tarfile

from kd_keras.errors import UserError
from kd_keras.files import sha256_of

_log = logging.getLogger(__name__)

FORMAT = "kd_keras.pack/1"
MANIFEST = "pack.json"
MAX_IMAGE_SIZE = 2048  # a pack's images are the run's input size: 2048 px is already 12 MiB an image


def _encode(array, image_format, quality):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format.upper(), quality=quality)
    return buffer.getvalue()


def _member_name(split, class_name, path, taken):
    stem = os.path.splitext(os.path.basename(path))[0]
    parts = [] if split == "all" else [split]  # a folder without splits stays one
    name = "/".join(parts + [class_name, stem])
    candidate, k = name, 1
    while candidate in taken:  # a.jpg and a.png in one class
        candidate, k = f"{name}-{k}", k + 1
    taken.add(candidate)
    return candidate


class _ShardWriter:
    """Tar shards no larger than ``max_bytes``: tar pads a file to whole records (10 KiB)."""

    def __init__(self, out, max_bytes):
        self.out = out
        # room for members: whole records, less the two zero blocks that end the archive
        self.room = (max_bytes // tarfile.RECORDSIZE) * tarfile.RECORDSIZE - 2 * tarfile.BLOCKSIZE
        if self.room <= 0:
            raise UserError(f"--max-mib must be at least {tarfile.RECORDSIZE / 2**20:.3f} (one tar record)")
        self.shards, self.tar = [], None

    def _open(self):
        path = os.path.join(self.out, f"shard-{len(self.shards):03d}.tar")
        self.shards.append({"file": os.path.basename(path), "images": 0})
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)

    def add(self, name, payload):
        def blocks(n):
            return -(-n // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE

        # a header block, a PAX header (two blocks and the name) for long or non-ASCII names, the data
        cost = 3 * tarfile.BLOCKSIZE + blocks(len(name.encode())) + blocks(len(payload))
        if cost > self.room:
            raise UserError(f"one image ({name}, {len(payload)} bytes) does not fit in a shard of "
                            f"{(self.room + 2 * tarfile.BLOCKSIZE) / 2**20:.3f} MiB; raise --max-mib or lower --quality")
        if self.tar is None or self.tar.fileobj.tell() + cost > self.room:
            self.close()
            self._open()
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(payload), 0o644, 0
        self.tar.addfile(info, io.BytesIO(payload))
        self.shards[-1]["images"] += 1

    def close(self):
        if self.tar is not None:
            self.tar.close()
            path = os.path.join(self.out, self.shards[-1]["file"])
            self.shards[-1].update(bytes=os.path.getsize(path), sha256=sha256_of(path))
            self.tar = None


def pack(data_dir, out, image_size, max_mib, quality=80, image_format="webp", log=None):
    """Packs the dataset folder ``data_dir`` into ``out``; returns the manifest.

    Args:
        data_dir: a class folder, split folders or Kaggle's layout (any ``--data-dir`` value
            becomes one with :func:`kd_keras.sources.resolve_source`).
        out: a new or empty folder, outside ``data_dir``.
        image_size: the side ``N`` the images are stored at (the run's image size).
        max_mib: the largest shard, in MiB (2**20 bytes).
        quality: the encoder's quality, 1-100.
        image_format: ``"webp"`` (about 30 % smaller at 224 px) or ``"jpeg"``.
    """
    from kd_keras import data, input_pipeline

    if image_format not in ("webp", "jpeg"):
        raise UserError(f"unknown image format {image_format!r}; use webp or jpeg")
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be in 1..100, got {quality}")
    if not 8 <= image_size <= MAX_IMAGE_SIZE:
        raise UserError(f"--image-size must be in 8..{MAX_IMAGE_SIZE}, got {image_size}")
    if not (0 < max_mib < float("inf")):  # nan and inf fail too
        raise UserError(f"--max-mib must be a number > 0, got {max_mib}")
    source = os.fspath(data_dir)
    dataset = data.scan(source)
    out_abs, source_abs = os.path.realpath(out), os.path.realpath(source)  # through any symlink
    if out_abs == source_abs or out_abs.startswith(source_abs + os.sep):
        raise UserError(f"--out {out} is inside the dataset {data_dir}; nothing is written into a dataset folder")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise UserError(f"--out {out} exists and is not an empty folder; choose a new one")
    os.makedirs(out, exist_ok=True)
    writer, taken, skipped, counts = _ShardWriter(out, int(max_mib * 2**20)), set(), [], {}

    def encoded(item):
        try:
            return _encode(input_pipeline.decode_file(item[0], image_size), image_format, quality), None
        except Exception as exc:  # noqa: BLE001 - an unreadable file is skipped and named, as in training
            return None, f"{item[0]}: {str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__}"

    total, done = sum(len(items) for items in dataset.splits.values()), 0
    with concurrent.futures.ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        for split, items in dataset.splits.items():
            counts[split] = {name: 0 for name in dataset.class_names}
            for item, (payload, problem) in zip(items, pool.map(encoded, items)):
                done += 1
                if done % 1024 == 0 or done == total:
                    (log or _log.info)(f"packing: {done}/{total}")
                if problem:
                    skipped.append(problem)
                    continue
                class_name = dataset.class_names[item[1]]
                writer.add(_member_name(split, class_name, item[0], taken) + f".{image_format}", payload)
                counts[split][class_name] += 1
    writer.close()
    manifest = {"format": FORMAT, "name": dataset.name, "image_size": image_size, "image_format": image_format,
                "quality": quality, "class_names": dataset.class_names, "splits": counts,
                "shards": writer.shards, "skipped": skipped}
    with open(os.path.join(out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return manifest


def is_pack(path):
    """Whether ``path`` is a folder made by :func:`pack`."""
    return os.path.isfile(os.path.join(os.fspath(path), MANIFEST))


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,99}")
_SHARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.tar")
MAX_MEMBER_BYTES = 64 * 2**20  # one image, re-encoded: far less in any real pack
MAX_MEMBERS = 1_000_000


def _plain_name(value, pattern):
    """Whether ``value`` is one plain path component of ``pattern`` (no separator, no ``..``)."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None and value not in (".", "..") \
        and not value.endswith((".", " "))


def read_manifest(pack_dir):
    """``pack.json``, checked as data before anything of the pack is read.

    The name and each shard's file are single plain path components (nothing can point outside
    the pack or the cache), sizes are whole numbers and checksums SHA-256 hex.

    Raises:
        UserError: not a kd_keras pack, or any field missing or malformed.
    """
    path = os.path.join(pack_dir, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not readable: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a kd_keras pack (format {FORMAT})")
    if not _plain_name(manifest.get("name"), _NAME):
        raise UserError(f"{path}: name {str(manifest.get('name'))[:80]!r} is not a plain folder name "
                        "(letters, digits, '.', '_', '-', spaces; at most 100)")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards:
        raise UserError(f"{path}: 'shards' must be a non-empty list")
    seen = set()
    for shard in shards:
        ok = (isinstance(shard, dict) and _plain_name(shard.get("file"), _SHARD)
              and all(isinstance(shard.get(k), int) and not isinstance(shard.get(k), bool) and shard[k] >= 0
                      for k in ("bytes", "images"))
              and isinstance(shard.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", shard["sha256"]))
        if not ok or shard["file"] in seen:
            raise UserError(f"{path}: a shard entry {str(shard)[:120]} is malformed (a file name shard-NNN.tar "
                            "in the pack, whole bytes and images, a SHA-256, each file once)")
        seen.add(shard["file"])
    return manifest


def _checked_members(tar, shard):
    """The shard's members, refused unless each is a plain image file of a bounded size."""
    members = tar.getmembers()
    if len(members) > min(MAX_MEMBERS, shard["images"]):
        raise UserError(f"{shard['file']} holds {len(members)} members, more than the {shard['images']} "
                        f"images {MANIFEST} names")
    total = 0
    for member in members:
        parts = member.name.split("/")
        if (not member.isfile() or member.issparse() or member.name.startswith("/") or ".." in parts
                or "" in parts or not 2 <= len(parts) <= 3 or len(member.name) > 255):
            raise UserError(f"{shard['file']} holds {member.name[:120]!r}, which a kd_keras pack never does")
        total += member.size
        if member.size > MAX_MEMBER_BYTES or total > shard["bytes"]:
            raise UserError(f"{shard['file']}: {member.name[:120]!r} is {member.size} bytes, more than a "
                            f"packed image can be (at most {MAX_MEMBER_BYTES // 2**20} MiB, within the shard's size)")
    return members


def unpack(pack_dir, cache_dir, log=None):
    """The folder of a pack's images, unpacked once into ``cache_dir`` after checking every shard.

    Raises:
        UserError: a shard missing, of another size or checksum (copied in part, or from
            another pack), or holding anything but images.
    """
    manifest = read_manifest(pack_dir)
    key = sha256_of(os.path.join(pack_dir, MANIFEST))[:16]
    target = os.path.join(cache_dir, "packs", key)
    folder = os.path.join(target, manifest["name"])
    if os.path.isdir(folder):
        return folder
    for shard in manifest["shards"]:
        path = os.path.join(pack_dir, shard["file"])
        if not os.path.isfile(path):
            raise UserError(f"{path} is missing: copy every shard that {MANIFEST} names "
                            f"({len(manifest['shards'])} in all)")
        if os.path.getsize(path) != shard["bytes"] or sha256_of(path) != shard["sha256"]:
            raise UserError(f"{path} is not the shard {MANIFEST} names (size or SHA-256 differ): copy it again")
    tmp = f"{target}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, manifest["name"]))
    (log or _log.info)(f"unpacking {len(manifest['shards'])} shard(s) of {pack_dir} into {target}")
    try:
        for shard in manifest["shards"]:
            try:
                with tarfile.open(os.path.join(pack_dir, shard["file"]), "r:") as tar:  # plain tar only
                    tar.extractall(os.path.join(tmp, manifest["name"]), members=_checked_members(tar, shard),
                                   filter="data")
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise UserError(f"{os.path.join(pack_dir, shard['file'])} is not a readable uncompressed tar: "
                                f"{str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-extracted tree is left behind
        raise
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
