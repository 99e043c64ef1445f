#!/usr/bin/env python3
"""Writes the small PyTorch checkpoints used by tests/io/torch_checkpoint_test.cpp.

Standard library only (there is no torch here). The pickles are what torch.save's pickler emits:
tensors reduce to torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
OrderedDict()), storages go out as persistent ids ('storage', torch.FloatStorage, key, 'cpu',
numel), and the globals come from fake modules registered in sys.modules so that pickle writes
the same GLOBAL opcodes. The zip container is the one torch's writer (miniz) produces: entries
stored uncompressed under one archive folder, data aligned to 64 bytes by an 'FB' padding field
in the local header, sizes and CRC in data descriptors, zip64 end records. torch 2.x record
order: data.pkl, .format_version, .storage_alignment, byteorder, data/<key> in sorted key order,
version, .data/serialization_id (a fixed id here); torch 1.x wrote data.pkl, data/*, version.
Checked against torch 2.11: identical bytes apart from the serialization id.

    python3 make_checkpoints.py                    # rewrites the .pt files beside this script
    python3 make_checkpoints.py --fuzz-corpus DIR  # also writes their pickles as fuzz seeds
"""
import collections
import os
import pickle
import struct
import sys
import types
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def fake_module(name):
    """A module in sys.modules (with its parent packages) so that pickle can name its globals."""
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        fake_module(parent)
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


def fake_global(module, name, obj):
    obj.__module__ = module.__name__
    obj.__qualname__ = obj.__name__ = name
    setattr(module, name, obj)
    return obj


torch = fake_module("torch")
torch_utils = fake_module("torch._utils")
numpy = fake_module("numpy")
numpy_multiarray = fake_module("numpy.core.multiarray")
pl_checkpoint = fake_module("pytorch_lightning.callbacks.model_checkpoint")

# name -> (struct format of one element, element size)
STORAGE_TYPES = {
    "FloatStorage": ("f", 4),
    "HalfStorage": ("e", 2),
    "BFloat16Storage": (None, 2),
    "DoubleStorage": ("d", 8),
    "LongStorage": ("q", 8),
    "IntStorage": ("i", 4),
    "BoolStorage": ("?", 1),
}
for _name in STORAGE_TYPES:
    fake_global(torch, _name, type(_name, (), {}))


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called: only pickled")


def _rebuild_parameter(*args):
    raise RuntimeError("never called: only pickled")


fake_global(torch_utils, "_rebuild_tensor_v2", _rebuild_tensor_v2)
fake_global(torch_utils, "_rebuild_parameter", _rebuild_parameter)
fake_global(pl_checkpoint, "ModelCheckpoint", type("ModelCheckpoint", (), {}))


def bf16_bytes(values):
    out = b""
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        assert bits & 0xFFFF == 0, f"{v} is not exactly representable in bfloat16"
        out += struct.pack("<H", bits >> 16)
    return out


class Storage:
    """A typed storage; pickled only through persistent_id."""

    def __init__(self, key, type_name, values):
        self.key = key
        self.type_name = type_name
        fmt, self.element_size = STORAGE_TYPES[type_name]
        self.numel = len(values)
        self.data = bf16_bytes(values) if fmt is None else struct.pack("<%d%s" % (len(values), fmt), *values)


class Tensor:
    def __init__(self, storage, offset, size, stride):
        # Fresh tuples, as tuple(tensor.size()) gives torch: equal constants must not share a memo.
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(list(size)), tuple(list(stride))

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False,
                                     collections.OrderedDict()))


class Parameter:
    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self.data, True, collections.OrderedDict()))


def contiguous(key, type_name, values, size):
    stride, step = [], 1
    for d in reversed(size):
        stride.insert(0, step)
        step *= d
    return Tensor(Storage(key, type_name, values), 0, size, stride)


class NumpyDType:
    def __reduce__(self):
        return (NumpyDType, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0))


def numpy_scalar(*args):
    raise RuntimeError("never called: only pickled")


class NumpyFloat:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (numpy_scalar, (NumpyDType(), struct.pack("<d", self.value)))


fake_global(numpy, "dtype", NumpyDType)
fake_global(numpy_multiarray, "scalar", numpy_scalar)


def dump_pickle(obj, protocol, legacy):
    """torch.save's pickler: storages as persistent ids, everything else by value."""
    import io

    buf = io.BytesIO()
    storages = {}

    def persistent_id(o):
        if not isinstance(o, Storage):
            return None
        storages[o.key] = o
        storage_type = getattr(torch, o.type_name)
        if legacy:
            return ("storage", storage_type, o.key, "cpu", o.numel, None)
        return ("storage", storage_type, o.key, "cpu", o.numel)

    pickler = pickle.Pickler(buf, protocol=protocol)
    pickler.persistent_id = persistent_id
    pickler.dump(obj)
    return buf.getvalue(), storages


def write_torch_zip(path, archive, records):
    """The zip layout of torch's PyTorchStreamWriter (miniz)."""
    out, central = bytearray(), bytearray()
    for name, data in records:
        name = (archive + "/" + name).encode()
        offset = len(out)
        pad = (64 - (offset + 30 + len(name) + 4) % 64) % 64
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 0, 0x808, 0, 0, 0, 0, 0, 0, len(name), len(extra))
        out += name + extra + data
        out += struct.pack("<4sIII", b"PK\x07\x08", crc, len(data), len(data))
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0, 0, 0x808, 0, 0, 0, crc, len(data),
                               len(data), len(name), 0, 0, 0, 0, 0, offset)
        central += name
    cd_offset, n = len(out), len(records)
    out += central
    eocd64 = len(out)
    out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x31E, 0x2D, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd64, 1)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, 0)
    with open(path, "wb") as f:
        f.write(out)


def save_zip(path, obj, archive, protocol=2, torch2=True):
    data_pkl, storages = dump_pickle(obj, protocol, legacy=False)
    records = [("data.pkl", data_pkl)]
    if torch2:
        records += [(".format_version", b"1"), (".storage_alignment", b"64"), ("byteorder", b"little")]
    records += [("data/" + key, storages[key].data) for key in sorted(storages)]
    records.append(("version", b"3\n"))
    if torch2:
        records.append((".data/serialization_id", b"0123456789" * 4))
    write_torch_zip(path, archive, records)
    return data_pkl


MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


def save_legacy(path, obj):
    """torch.save(..., _use_new_zipfile_serialization=False)."""
    sys_info = dict(protocol_version=LEGACY_PROTOCOL_VERSION, little_endian=True,
                    type_sizes=dict(short=2, int=4, long=4))
    main, storages = dump_pickle(obj, 2, legacy=True)
    keys = sorted(storages)
    with open(path, "wb") as f:
        f.write(pickle.dumps(MAGIC_NUMBER, protocol=2))
        f.write(pickle.dumps(LEGACY_PROTOCOL_VERSION, protocol=2))
        f.write(pickle.dumps(sys_info, protocol=2))
        f.write(main)
        f.write(pickle.dumps(keys, protocol=2))
        for key in keys:
            s = storages[key]
            f.write(struct.pack("<q", s.numel))
            f.write(s.data)
    return main


def state_dict_checkpoint():
    """A model state_dict as torch 2.x saves it: dtypes, a shared storage, views, _metadata."""
    shared = Storage("4", "FloatStorage", [float(i) for i in range(12)])
    sd = collections.OrderedDict()
    sd["conv.weight"] = contiguous("0", "FloatStorage", [0.5 * i - 1.0 for i in range(8)], (2, 1, 2, 2))
    sd["conv.bias"] = contiguous("1", "HalfStorage", [1.5, -2.25], (2,))
    sd["norm.weight"] = contiguous("2", "BFloat16Storage", [1.0, -0.5, 3.0, 0.15625], (4,))
    sd["norm.num_batches_tracked"] = contiguous("3", "LongStorage", [470000], ())
    sd["shared.full"] = Tensor(shared, 0, (3, 4), (4, 1))
    sd["shared.t"] = Tensor(shared, 0, (4, 3), (1, 4))
    sd["shared.col"] = Tensor(shared, 1, (3,), (4,))
    sd["slice"] = Tensor(Storage("5", "FloatStorage", [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]), 2, (2,), (1,))
    sd["ids"] = contiguous("6", "LongStorage", [3, -7, 2 ** 40], (3,))
    sd["mask"] = contiguous("7", "BoolStorage", [True, False, True], (3,))
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("conv", {"version": 1})])
    return sd


def lightning_checkpoint():
    """A Lightning 1.x checkpoint as torch 1.x saved it (archive folder = file stem)."""
    sd = collections.OrderedDict()
    sd["model.diffusion_model.out.2.weight"] = contiguous("0", "HalfStorage", [0.25, -1.0, 2.0, 4.5], (2, 2))
    sd["first_stage_model.decoder.conv_out.bias"] = contiguous("1", "FloatStorage", [0.1, 0.2, 0.3], (3,))
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = contiguous(
        "2", "LongStorage", [0, 1, 2, 3, 4], (1, 5))
    exp_avg = contiguous("3", "FloatStorage", [9.0, 9.0, 9.0], (3,))
    return {
        "epoch": 6,
        "global_step": 470000,
        "pytorch-lightning_version": "1.4.2",
        "learning_rate": 0.0001,
        "ema": True,
        "state_dict": sd,
        "callbacks": {pl_checkpoint.ModelCheckpoint: {
            "monitor": None,
            "best_model_score": NumpyFloat(0.125),
            "best_model_path": "/logs/checkpoints/last.ckpt",
        }},
        "optimizer_states": [{"state": {0: {"exp_avg": exp_avg, "step": 470000}},
                              "param_groups": [{"lr": 0.0001, "betas": (0.9, 0.999), "params": [0]}]}],
        "lr_schedulers": [],
    }


def nested_checkpoint():
    """Nested dicts and lists, an int key and a Parameter, saved with pickle_protocol=4."""
    return {
        "model": {"encoder": {"w": Parameter(contiguous("0", "FloatStorage", [1.0, 2.0], (2,)))}},
        "blocks": [contiguous("1", "DoubleStorage", [0.5], (1,)),
                   {"b": contiguous("2", "IntStorage", [-3, 4], (2,))}],
        3: contiguous("3", "HalfStorage", [8.0], ()),
        "step": 5,
        "name": "emb",
    }


def legacy_checkpoint():
    """torch 1.x legacy stream; storage keys are str(storage._cdata)."""
    sd = collections.OrderedDict()
    sd["linear.weight"] = contiguous("94011235560528", "FloatStorage", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3))
    sd["linear.bias"] = contiguous("94011235562000", "FloatStorage", [-1.0, 1.0], (2,))
    sd["emb"] = Tensor(Storage("94011235563000", "HalfStorage", [0.5, 1.5, 2.5, 3.5]), 1, (2,), (2,))
    sd["count"] = contiguous("94011235564000", "LongStorage", [42], ())
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


def main(argv):
    seeds = {
        "state_dict": save_zip(os.path.join(HERE, "state_dict.pt"), state_dict_checkpoint(), "archive"),
        "lightning": save_zip(os.path.join(HERE, "lightning.pt"), lightning_checkpoint(), "lightning",
                              torch2=False),
        "nested": save_zip(os.path.join(HERE, "nested.pt"), nested_checkpoint(), "archive", protocol=4),
        "legacy": save_legacy(os.path.join(HERE, "legacy.pt"), legacy_checkpoint()),
    }
    if len(argv) == 2 and argv[0] == "--fuzz-corpus":
        os.makedirs(argv[1], exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(argv[1], name + ".pkl"), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main(sys.argv[1:])
