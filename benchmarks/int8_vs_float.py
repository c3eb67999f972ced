"""int8 against float32 on this CPU, and which operators run outside the XNNPACK delegate.

    python benchmarks/int8_vs_float.py [--bundle export] [--repeat 2000] [--out benchmarks/results]

Needs only the runtime's dependencies (numpy, ai-edge-litert or tflite-runtime, optionally
onnxruntime), so it runs on a Raspberry Pi or any other machine as it is. For each model it times
one image and a batch of 64 through the float32 and int8 files, one thread, side by side in one
process (median over ``--repeat`` calls after a warm-up), with LiteRT's default XNNPACK delegate,
with the built-in kernels alone (no delegate), and on onnxruntime. It lists the delegate
partitions of each TFLite graph and the operators left between them, and names the CPU with the
flags that decide int8 speed (VNNI on x86, dot-product on Arm). Writes
``int8_vs_float-<cpu>.{json,md}``, ``<cpu>`` being the CPU's model name, family, model and stepping
(x86) or part numbers (Arm), core count and a hash of those and its flags (``machine.cpu_slug``):
results from two different CPUs never overwrite each other.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
from mnist_edge_runtime.machine import cpu_slug, describe_machine, one_line
from script_parser import script_parser

REPO = Path(__file__).resolve().parents[1]
BATCH = 64


def median_us(call, repeat: int) -> float:
    for _ in range(max(20, repeat // 20)):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def tflite_interpreter(path: Path, delegate: bool):
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:
        from tflite_runtime import interpreter as litert
    resolver = (
        litert.OpResolverType.AUTO if delegate else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    return litert.Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)


def outside_delegate(interpreter) -> list[str]:
    """Operators whose results a delegate partition waits for, computed outside any partition."""
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    delegated_outputs = {int(t) for op in delegates for t in op["outputs"]}
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    wanted = [int(t) for op in delegates for t in op["inputs"]]
    wanted += [d["index"] for d in interpreter.get_output_details()]
    found, seen = [], set()
    while wanted:
        tensor = wanted.pop()
        if tensor in delegated_outputs or tensor not in producer or tensor in seen:
            continue
        seen.add(tensor)
        op = producer[tensor]
        found.append(op)
        wanted += [int(t) for t in op["inputs"]]
    return [op["op_name"] for op in sorted(found, key=lambda op: op["index"])]


def time_tflite(path: Path, images: np.ndarray, delegate: bool, repeat: int) -> dict:
    interpreter = tflite_interpreter(path, delegate)
    detail = interpreter.get_input_details()[0]
    one = images[:1].reshape([1, *detail["shape"][1:]]).astype(detail["dtype"])
    batch = images[:BATCH].reshape([BATCH, *detail["shape"][1:]]).astype(detail["dtype"])
    if detail["dtype"] == np.float32:
        one, batch = one / 255.0, batch / 255.0

    def run(x: np.ndarray) -> None:
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()

    interpreter.allocate_tensors()
    single = median_us(lambda: run(one), repeat)
    interpreter.resize_tensor_input(detail["index"], batch.shape)
    interpreter.allocate_tensors()
    row = {
        "single_us": round(single, 1),
        f"batch{BATCH}_us_per_image": round(median_us(lambda: run(batch), max(50, repeat // 20)) / BATCH, 2),
    }
    if delegate:
        interpreter = tflite_interpreter(path, delegate)
        interpreter.allocate_tensors()
        ops = interpreter._get_ops_details()
        row["partitions"] = sum(op["op_name"] == "DELEGATE" for op in ops)
        row["outside_delegate"] = outside_delegate(interpreter)
    return row


def time_onnx(path: Path, images: np.ndarray, repeat: int) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else -1 for d in spec.shape]
    dtype = np.uint8 if "uint8" in spec.type else np.float32
    one = images[:1].reshape([1, *shape[1:]]).astype(dtype)
    batch = images[:BATCH].reshape([BATCH, *shape[1:]]).astype(dtype)
    if dtype == np.float32:
        one, batch = one / 255.0, batch / 255.0
    single = median_us(lambda: session.run(None, {spec.name: one}), repeat)
    per_image = median_us(lambda: session.run(None, {spec.name: batch}), max(50, repeat // 20)) / BATCH
    return {"single_us": round(single, 1), f"batch{BATCH}_us_per_image": round(per_image, 2)}


def measure(bundle: Path, images: np.ndarray, repeat: int) -> list[dict]:
    rows = []
    for model in ("conv2d", "flat"):
        for engine in ("litert + XNNPACK", "litert built-in kernels", "onnxruntime"):
            row = {"model": model, "engine": engine}
            for precision in ("float32", "int8"):
                suffix = "onnx" if engine == "onnxruntime" else "tflite"
                path = bundle / f"{model}.{precision}.{suffix}"
                try:
                    if engine == "onnxruntime":
                        row[precision] = time_onnx(path, images, repeat)
                    else:
                        row[precision] = time_tflite(path, images, engine.endswith("XNNPACK"), repeat)
                except ImportError as exc:
                    row[precision] = {"error": str(exc)}
            if "single_us" in row["float32"] and "single_us" in row["int8"]:
                row["int8_speedup_single"] = round(row["float32"]["single_us"] / row["int8"]["single_us"], 2)
                key = f"batch{BATCH}_us_per_image"
                row["int8_speedup_batch"] = round(row["float32"][key] / row["int8"][key], 2)
            rows.append(row)
    return rows


def markdown(result: dict) -> str:
    lines = [
        f"CPU: **{result['machine']}**. One thread; median of {result['repeat']} calls.",
        "",
        f"| model | engine | float32 1 image (µs) | int8 1 image (µs) | int8 speed-up, 1 image | "
        f"int8 speed-up, batch of {BATCH} | int8 partitions | int8 ops outside the delegate |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        f, i = r["float32"], r["int8"]
        if "single_us" not in f or "single_us" not in i:
            continue
        lines.append(
            f"| {r['model']} | {r['engine']} | {f['single_us']} | {i['single_us']} | {r['int8_speedup_single']}x "
            f"| {r['int8_speedup_batch']}x | {i.get('partitions', '')} | {', '.join(i.get('outside_delegate', []))} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--bundle", type=Path, default=REPO / "export")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    from mnist_edge_runtime.idx import IMAGES_MAGIC, read_idx

    images = read_idx(REPO / "mnist_edge" / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)
    machine = describe_machine()
    result = {
        "machine": one_line(machine),
        "cpu": machine,
        "repeat": args.repeat,
        "rows": measure(args.bundle, images, args.repeat),
    }
    slug = cpu_slug()  # model name, family/model/stepping, cores, flags: two CPUs never share it
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"int8_vs_float-{slug}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"int8_vs_float-{slug}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
