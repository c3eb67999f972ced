"""Can the int8 conv2d graph run as one XNNPACK partition with the same outputs? Edited copies, timed.

    python benchmarks/one_partition.py [--model export/conv2d.int8.tflite] [--rounds 30] [--out benchmarks/results]

Runtime dependencies only, with ai-edge-litert (its flatbuffer schema and the flatbuffers package
come with it). The model file is only read: its copies are edited in memory and written to a
temporary folder. LiteRT's XNNPACK delegate takes the int8 graph's REDUCE_MAX but not its MAXIMUM
or RSQRT, so the graph runs as two partitions with those two operators between them. Edits:

* ``no MAXIMUM``: the MAXIMUM's constant is the int8 zero level (``max(peak, 1e-3)`` rounds 1e-3 to
  0 at the peak's scale) and its input and output share scale and zero point, so it returns its
  input unchanged for every int8 value: removed.
* ``one partition``: also the int8 RSQRT written as DEQUANTIZE -> float32 RSQRT -> QUANTIZE, which
  XNNPACK takes. Same maths if the two forms agree on all 256 int8 inputs: checked here, with and
  without XNNPACK, and the distance of every exact result from a rounding boundary is printed.
* ``int8 input``: also the input QUANTIZE (uint8 pixels to int8, outside the partition) removed;
  this one changes the model's interface (pixels - 128 in), so it is timed only to show what that
  operator costs.

Each copy's logits are compared with the file's on the 5,000 validation images (the last 5,000
training images), with XNNPACK and with LiteRT's built-in kernels; then every graph and the float32
model are timed in interleaved rounds, one thread. Writes ``one_partition-<cpu>.{json,md}``.
"""

from __future__ import annotations

import copy
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema
from mnist_edge_runtime.idx import IMAGES_MAGIC, read_idx
from mnist_edge_runtime.machine import describe_machine, one_line, parse_cpuinfo

sys.path.insert(0, str(Path(__file__).parent))
from int8_vs_float import outside_delegate  # noqa: E402
from script_parser import script_parser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OP = schema.BuiltinOperator
XNNPACK = litert.OpResolverType.AUTO
BUILTIN = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
BATCH = 64
NO_XNNPACK = "built-in kernels (no XNNPACK)"


def read_model(path: Path) -> schema.ModelT:
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))


def write_model(model: schema.ModelT, path: Path) -> Path:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def opcode(model: schema.ModelT, code: int, version: int) -> int:
    for i, c in enumerate(model.operatorCodes):
        if c.builtinCode == code:
            return i
    c = schema.OperatorCodeT()
    c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), version
    model.operatorCodes.append(c)
    return len(model.operatorCodes) - 1


def op_index(model: schema.ModelT, code: int) -> int:
    ops = model.subgraphs[0].operators
    return next(i for i, op in enumerate(ops) if model.operatorCodes[op.opcodeIndex].builtinCode == code)


def new_op(model: schema.ModelT, code: int, version: int, inputs: list[int], outputs: list[int]):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs, op.builtinOptionsType = (
        opcode(model, code, version),
        inputs,
        outputs,
        0,
    )
    return op


def float_tensor(model: schema.ModelT, like: int, name: str) -> int:
    tensors = model.subgraphs[0].tensors
    t = copy.deepcopy(tensors[like])
    t.type, t.quantization, t.name, t.buffer = schema.TensorType.FLOAT32, None, name.encode(), 0
    tensors.append(t)
    return len(tensors) - 1


def rewire(model: schema.ModelT, old: int, new: int) -> None:
    for op in model.subgraphs[0].operators:
        op.inputs = [new if t == old else t for t in op.inputs]


def drop_maximum(model: schema.ModelT) -> None:
    graph = model.subgraphs[0]
    i = op_index(model, OP.MAXIMUM)
    peak, constant = graph.operators[i].inputs
    a, b = graph.tensors[peak].quantization, graph.tensors[graph.operators[i].outputs[0]].quantization
    level = np.frombuffer(bytes(model.buffers[graph.tensors[constant].buffer].data), np.int8)
    if list(a.scale) != list(b.scale) or list(a.zeroPoint) != list(b.zeroPoint) or level.tolist() != [-128]:
        raise SystemExit(
            "MAXIMUM is not an identity here: constant not the lowest int8 level, or scales differ"
        )
    out = graph.operators.pop(i).outputs[0]
    rewire(model, out, peak)


def float_rsqrt(model: schema.ModelT) -> None:
    graph = model.subgraphs[0]
    i = op_index(model, OP.RSQRT)
    (src,), (dst,) = graph.operators[i].inputs, graph.operators[i].outputs
    f_in, f_out = float_tensor(model, src, "peak_float32"), float_tensor(model, dst, "rsqrt_float32")
    graph.operators[i : i + 1] = [
        new_op(model, OP.DEQUANTIZE, 2, [src], [f_in]),
        new_op(model, OP.RSQRT, 1, [f_in], [f_out]),
        new_op(model, OP.QUANTIZE, 1, [f_out], [dst]),
    ]


def int8_input(model: schema.ModelT) -> None:
    graph = model.subgraphs[0]
    if op_index(model, OP.QUANTIZE) != 0:
        raise SystemExit("the graph does not start with QUANTIZE")
    op = graph.operators.pop(0)
    (src,), (dst,) = op.inputs, op.outputs
    graph.tensors[src].type = schema.TensorType.INT8
    graph.tensors[src].quantization = copy.deepcopy(graph.tensors[dst].quantization)
    rewire(model, dst, src)


def rsqrt_alone(model: schema.ModelT, as_float: bool) -> schema.ModelT:
    """A graph of the RSQRT step only (int8 in, int8 out), in either form."""
    model = copy.deepcopy(model)
    if as_float:
        float_rsqrt(model)
    graph = model.subgraphs[0]
    first = op_index(model, OP.DEQUANTIZE if as_float else OP.RSQRT)
    graph.operators = graph.operators[first : first + (3 if as_float else 1)]
    graph.inputs, graph.outputs = [graph.operators[0].inputs[0]], [graph.operators[-1].outputs[0]]
    model.signatureDefs = []
    return model


def interpreter(path: Path, resolver, batch: int):
    it = litert.Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
    detail = it.get_input_details()[0]
    it.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    it.allocate_tensors()
    return it, detail


def as_input(images: np.ndarray, detail: dict) -> np.ndarray:
    x = images.reshape([len(images), *detail["shape"][1:]])
    if detail["dtype"] == np.int8:
        return (x.astype(np.int16) - 128).astype(np.int8)
    if detail["dtype"] == np.float32:
        return x.astype(np.float32) / np.float32(255)
    return x


def outputs(path: Path, resolver, x: np.ndarray) -> np.ndarray:
    it, detail = interpreter(path, resolver, len(x))
    it.set_tensor(detail["index"], as_input(x, detail))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def partitions(path: Path) -> tuple[int, list[str]]:
    it, _ = interpreter(path, XNNPACK, 1)
    return sum(op["op_name"] == "DELEGATE" for op in it._get_ops_details()), outside_delegate(it)


def rsqrt_boundary_margins(model: schema.ModelT) -> tuple[float, float]:
    """How far the exact rsqrt of every non-zero int8 peak lies from where int8 rounding flips:
    in output steps, and as the relative error of a float32 rsqrt that could reach it.

    A zero peak is left out: every feature is then at the zero level, and the two MULs give zero
    whatever the RSQRT says.
    """
    graph = model.subgraphs[0]
    op = graph.operators[op_index(model, OP.RSQRT)]
    qi, qo = graph.tensors[op.inputs[0]].quantization, graph.tensors[op.outputs[0]].quantization
    peak = (np.arange(-127, 128) - qi.zeroPoint[0]) * np.float64(np.float32(qi.scale[0]))
    steps = 1 / np.sqrt(peak[peak > 0]) / np.float64(np.float32(qo.scale[0]))
    exact = steps + qo.zeroPoint[0]
    # Below 127.5 the nearest .5 is where rounding flips; above it only 127.5 (saturation) matters.
    margin = np.where(exact < 127.5, np.abs(exact - np.floor(exact) - 0.5), exact - 127.5)
    return float(margin.min()), float((margin / steps).min())


def time_all(graphs: dict[str, tuple[Path, object]], images: np.ndarray, rounds: int, calls: int) -> dict:
    """Every graph on its kernels, one image and a batch, all interleaved round by round."""
    runners = {}
    for name, (path, resolver) in graphs.items():
        for n in (1, BATCH):
            it, detail = interpreter(path, resolver, n)
            x = as_input(images[:n], detail)
            runners[name, n] = (it, detail["index"], x)
    times: dict[tuple[str, int], list[float]] = {key: [] for key in runners}
    keys = list(runners)
    for r in range(rounds):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            it, index, x = runners[key]
            n = calls if key[1] == 1 else max(3, calls // 20)
            for _ in range(3):
                it.set_tensor(index, x)
                it.invoke()
            for _ in range(n):
                start = time.perf_counter()
                it.set_tensor(index, x)
                it.invoke()
                times[key].append((time.perf_counter() - start) / key[1])
    return {
        name: {
            "single_us": round(statistics.median(times[name, 1]) * 1e6, 1),
            f"batch{BATCH}_us_per_image": round(statistics.median(times[name, BATCH]) * 1e6, 2),
        }
        for name in graphs
    }


def cpu_slug() -> str:
    """CPU model, family/model numbers and the int8 feature that matters: two CPUs never share it."""
    try:
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        info = {}
    flags = set((info.get("flags") or info.get("Features") or "").split())
    name = describe_machine()["cpu"]["model"]
    family = f"family{info['cpu family']}-model{info['model']}" if "cpu family" in info else ""
    feature = next(
        (f for f in ("avx512_vnni", "avx_vnni", "avx2", "sse4_2", "i8mm", "asimddp", "asimd") if f in flags),
        "",
    )
    slug = "-".join(p for p in (name, family, feature) if p)
    return re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")


def markdown(result: dict) -> str:
    rows = result["graphs"]
    lines = [
        f"CPU: **{result['machine']}**. `{result['model']}` and edited copies of it on LiteRT, one "
        f"thread, with its default XNNPACK delegate unless the row says otherwise; {result['rounds']} "
        f"interleaved rounds, median of all calls.",
        "",
        f"| graph | XNNPACK partitions | operators outside XNNPACK | logits = the file's (XNNPACK, built-in; "
        f"{result['validation_images']:,} validation images) | 1 image (µs) | batch of {BATCH} (µs per image) |",
        "| --- | ---: | --- | --- | ---: | ---: |",
    ]
    for name, row in rows.items():
        same = row.get("same_logits")
        same_text = "" if same is None else ", ".join("yes" if s else "NO" for s in same)
        lines.append(
            f"| {name} | {row['partitions']} | {', '.join(row['outside']) or 'none'} | {same_text} | "
            f"{row['single_us']} | {row[f'batch{BATCH}_us_per_image']} |"
        )
    t = result["rsqrt_table"]
    lines += [
        "",
        f"RSQRT alone, all 256 int8 inputs: the float32 form gives the int8 kernel's output for "
        f"{t['float_builtin_equal']} (built-in kernels) and {t['float_xnnpack_equal']} (XNNPACK) of them; "
        f"the exact rsqrt of every non-zero peak lies at least {t['boundary_margin_steps']:.4f} output steps "
        f"from where rounding flips, so any float32 rsqrt within {t['boundary_margin_relative']:.1e} "
        f"(relative) of the exact one gives the same table.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "export" / "conv2d.int8.tflite")
    parser.add_argument("--float-model", type=Path, default=REPO / "export" / "conv2d.float32.tflite")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=100, help="one-image calls per graph and round")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    train = REPO / "mnist_edge" / "datasets" / "mnist" / "train-images-idx3-ubyte.gz"
    validation = read_idx(train, IMAGES_MAGIC)[-5000:]
    original = read_model(args.model)
    edits = {"no MAXIMUM": [drop_maximum], "one partition": [drop_maximum, float_rsqrt]}
    edits["one partition, int8 input"] = [*edits["one partition"], int8_input]
    with tempfile.TemporaryDirectory() as folder:
        graphs = {"float32": (args.float_model, XNNPACK), "int8 as committed": (args.model, XNNPACK)}
        for name, steps in edits.items():
            model = copy.deepcopy(original)
            for step in steps:
                step(model)
            path = Path(folder) / f"{re.sub(r'[^a-z0-9]+', '_', name)}.tflite"
            graphs[f"int8, {name}"] = (write_model(model, path), XNNPACK)
        graphs[f"float32, {NO_XNNPACK}"] = (args.float_model, BUILTIN)
        graphs[f"int8 as committed, {NO_XNNPACK}"] = (args.model, BUILTIN)
        reference = {r: outputs(args.model, r, validation) for r in (XNNPACK, BUILTIN)}
        rows = {}
        for name, (path, resolver) in graphs.items():
            count, outside = partitions(path) if resolver is XNNPACK else (0, ["all"])
            rows[name] = {"partitions": count, "outside": outside}
            if name.startswith("int8, "):
                rows[name]["same_logits"] = [
                    bool(np.array_equal(outputs(path, r, validation), reference[r]))
                    for r in (XNNPACK, BUILTIN)
                ]
        levels = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
        tables = {}
        for as_float in (False, True):
            path = write_model(rsqrt_alone(original, as_float), Path(folder) / f"rsqrt_{as_float}.tflite")
            for r in (BUILTIN, XNNPACK):
                tables[as_float, r] = outputs(path, r, levels).ravel()
        timings = time_all(graphs, validation, args.rounds, args.calls)
    for name in rows:
        rows[name].update(timings[name])
    base = tables[False, BUILTIN]
    margins = rsqrt_boundary_margins(original)
    machine = describe_machine()
    result = {
        "machine": one_line(machine),
        "cpu": machine,
        "model": str(args.model.relative_to(REPO) if args.model.is_relative_to(REPO) else args.model),
        "rounds": args.rounds,
        "validation_images": len(validation),
        "graphs": rows,
        "rsqrt_table": {
            "float_builtin_equal": int(np.sum(tables[True, BUILTIN] == base)),
            "float_xnnpack_equal": int(np.sum(tables[True, XNNPACK] == base)),
            "boundary_margin_steps": round(margins[0], 6),
            "boundary_margin_relative": float(f"{margins[1]:.3g}"),
        },
    }
    slug = cpu_slug()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"one_partition-{slug}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"one_partition-{slug}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
