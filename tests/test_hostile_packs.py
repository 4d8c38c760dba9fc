"""Hostile packs: a manifest is data, not paths; every malformed pack is one error and writes nothing."""

import gzip
import io
import json
import os
import tarfile

import numpy as np
import pytest

from kd_keras import pack
from kd_keras.errors import UserError
from kd_keras.files import sha256_of

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _shard(folder, members, name="shard-000.tar", mode="w"):
    """A shard of ``{member name: bytes}``; returns its manifest entry."""
    path = folder / name
    with tarfile.open(path, mode) as tar:
        for member, payload in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return {"file": name, "bytes": os.path.getsize(path), "sha256": sha256_of(path), "images": len(members)}


def _manifest(folder, shards, **fields):
    manifest = {"format": pack.FORMAT, "name": "pets", "image_size": 16, "image_format": "webp", "quality": 80,
                "class_names": ["cats", "dogs"], "splits": {}, "shards": shards, "skipped": [], **fields}
    (folder / "pack.json").write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def sandbox(tmp_path):
    """``(pack folder, cache folder)``; after the test nothing may exist outside them."""
    folder, cache = tmp_path / "pack", tmp_path / "cache"
    folder.mkdir()
    yield folder, cache
    outside = [f for f in _files(tmp_path) if not f.startswith(("pack" + os.sep, "cache" + os.sep))]
    assert not outside, outside


@pytest.mark.parametrize("name", ["../escaped", "/tmp/escaped", "a/b", "..", ".", "", "x" * 101, 7, None,
                                  "ok\x00no", "trailing."])
def test_a_name_that_is_not_one_plain_folder_name_is_refused(sandbox, name):
    folder, cache = sandbox
    _manifest(folder, [_shard(folder, {"train/cats/a.webp": b"x"})], name=name)
    with pytest.raises(UserError, match="plain folder name"):
        pack.unpack(str(folder), str(cache))
    assert not cache.exists()


@pytest.mark.parametrize("entry", [
    {"file": "../shard-000.tar"}, {"file": "/etc/passwd"}, {"file": "shard-000.tar/../x.tar"}, {"file": 3},
    {"bytes": -1}, {"bytes": "12"}, {"bytes": True}, {"sha256": "0" * 10}, {"images": None}, "shard-000.tar"])
def test_a_malformed_shard_entry_is_refused_before_anything_is_read(sandbox, entry):
    folder, cache = sandbox
    good = _shard(folder, {"train/cats/a.webp": b"x"})
    _manifest(folder, [{**good, **entry} if isinstance(entry, dict) else entry])
    with pytest.raises(UserError, match="malformed"):
        pack.unpack(str(folder), str(cache))


def test_a_compressed_shard_is_refused_and_leaves_no_half_tree(sandbox):
    folder, cache = sandbox
    # a gzip bomb: 8 MiB of zeros in a shard of a few KiB
    entry = _shard(folder, {"train/cats/a.webp": bytes(8 * 2**20)}, mode="w:gz")
    _manifest(folder, [entry])
    with pytest.raises(UserError, match="uncompressed tar"):
        pack.unpack(str(folder), str(cache))
    assert not cache.exists() or not _files(cache)


def test_more_members_than_the_manifest_names_are_refused(sandbox):
    folder, cache = sandbox
    entry = _shard(folder, {f"train/cats/{k}.webp": b"x" for k in range(5)})
    _manifest(folder, [{**entry, "images": 2}])
    with pytest.raises(UserError, match="more than the 2 images"):
        pack.unpack(str(folder), str(cache))


def test_a_truncated_or_foreign_shard_is_one_error(sandbox):
    folder, cache = sandbox
    (folder / "shard-000.tar").write_bytes(gzip.compress(b"not a tar at all") * 3)
    path = folder / "shard-000.tar"
    _manifest(folder, [{"file": "shard-000.tar", "bytes": os.path.getsize(path), "sha256": sha256_of(path),
                        "images": 1}])
    with pytest.raises(UserError, match="uncompressed tar"):
        pack.unpack(str(folder), str(cache))


def test_a_well_formed_pack_still_unpacks(sandbox):
    folder, cache = sandbox
    _manifest(folder, [_shard(folder, {"train/cats/a.webp": b"x", "train/dogs/b.webp": b"y"})])
    unpacked = pack.unpack(str(folder), str(cache), log=lambda *_: None)
    assert os.path.basename(unpacked) == "pets" and _files(unpacked) == [os.path.join("train", "cats", "a.webp"),
                                                                          os.path.join("train", "dogs", "b.webp")]


def test_seeded_fuzz_of_manifests_gives_an_error_or_a_pack_never_a_traceback(sandbox):
    folder, cache = sandbox
    good = _manifest(folder, [_shard(folder, {"train/cats/a.webp": b"x"})])
    rng = np.random.default_rng(0)
    values = [None, True, -1, 0, 2**63, 1.5, "", "..", "../x", "/abs", "a" * 300, [], {}, ["x"], {"a": 1},
              "shard-000.tar", "pets", "0" * 64]
    keys = ["format", "name", "shards", "class_names", "image_size", "file", "bytes", "sha256", "images"]
    for trial in range(150):
        manifest = json.loads(json.dumps(good))
        for _ in range(rng.integers(1, 4)):
            key, value = keys[rng.integers(len(keys))], values[rng.integers(len(values))]
            shards = manifest.get("shards")
            if key in ("file", "bytes", "sha256", "images"):
                if isinstance(shards, list) and shards and isinstance(shards[0], dict):
                    shards[0][key] = value
            else:
                manifest[key] = value
        (folder / "pack.json").write_text(json.dumps(manifest))
        try:
            found = pack.unpack(str(folder), str(cache / str(trial)), log=lambda *_: None)
        except UserError:
            continue
        assert os.path.realpath(found).startswith(os.path.realpath(cache) + os.sep)


def test_pack_out_through_a_symlink_into_the_dataset_is_refused(tmp_path):
    data_dir = tmp_path / "pets"
    for c in ("cats", "dogs"):
        (data_dir / c).mkdir(parents=True)
        for i in range(3):
            from PIL import Image

            Image.new("RGB", (12, 12), (40 * i, 9, 9)).save(data_dir / c / f"{i}.png")
    (tmp_path / "link").symlink_to(data_dir)
    before = _files(data_dir)
    with pytest.raises(UserError, match="inside the dataset"):
        pack.pack(str(data_dir), str(tmp_path / "link" / "packed"), 16, 1.0, log=lambda *_: None)
    assert _files(data_dir) == before
