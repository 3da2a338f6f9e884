"""Artifact benchmark: upload and download of one large file through mloop and through MLflow.

    .venv/bin/python bench/artifacts.py [--mb 100] [--repeat 3] [--no-s3] [--no-mlflow]

mloop goes through ``upload_tree`` / ``download_tree`` (content hashing on upload, hash verification
on download, atomic writes); MLflow through ``mlflow.log_artifact`` / ``mlflow.artifacts.
download_artifacts`` (plain copies, no hashing). Backends: a local folder, and S3 served by moto in a
separate process on loopback (both engines talk to the same server). Each (engine, backend) runs in a
worker process: mloop in this interpreter, MLflow in ``bench/.venv-mlflow`` (created on first use;
MLflow never enters the project's ``.venv``). Every repetition uploads new content (so mloop's
deduplication cannot skip the upload). Prints medians in MB/s (10^6 bytes) and mloop/MLflow ratios,
and writes ``bench/results/artifacts.json``.

How each engine talks to S3 (recorded in the JSON as ``transfer``): MLflow as a user has it, boto3's
defaults through ``upload_file`` / ``download_file`` (parts and ranges of 8 MiB, 10 threads, CRC32
checksums; no CRT). mloop hashes the file first (its key is the sha256; a stored blob is not sent
again), then sends 8 MiB parts, 4 at a time; downloads fetch ranges of 64-256 MiB, 4 at once, and
hash every byte before the file appears.

Read the S3 rows knowing what moto does: it reads the whole object for every GET, ranged or not
(~0.5 s of server CPU per request for 1 GB), so a download costs in proportion to its number of
requests (MLflow: size / 8 MiB; mloop: 4), not its bytes, unlike real S3. Uploads are bound by
moto's CPU (an MD5 and a disk write per part, then one thread joining the parts at completion).

Standard library only at import time: the MLflow worker imports this file without mloop installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_REQUIREMENTS = ["mlflow==3.17.2", "boto3"]
BUCKET = "mloop-bench"


# ============================================================================================ workers
def _make_file(path: Path, mb: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mb * 1_000_000 // len(chunk)):
            f.write(i.to_bytes(8, "little") + chunk[8:])
        f.write(chunk[: mb * 1_000_000 % len(chunk)])


def _stamp(path: Path, rep: int) -> None:
    """Make this repetition's content unique (new hash) without rewriting the file."""
    with open(path, "r+b") as f:
        f.write(uuid.uuid4().bytes + rep.to_bytes(8, "little"))


def worker_mloop(args: argparse.Namespace) -> dict[str, Any]:
    from mloop.artifacts import BlobStore, download_tree, upload_tree

    if args.backend == "s3":
        store = BlobStore(
            f"s3://{BUCKET}/mloop-{uuid.uuid4().hex}",
            storage_options={"endpoint_url": args.endpoint, "key": "testing", "secret": "testing"},
        )
    else:
        store = BlobStore(Path(args.tmp) / "mloop-store")
    src = Path(args.file)
    up, down = [], []
    for rep in range(args.repeat):
        _stamp(src, rep)
        t0 = time.perf_counter()
        entries = upload_tree(store, src, artifact_path="model")
        up.append(time.perf_counter() - t0)
        dest = Path(args.tmp) / f"mloop-dl-{rep}"
        t0 = time.perf_counter()
        download_tree(store, entries, dest)
        down.append(time.perf_counter() - t0)
        shutil.rmtree(dest)
    from mloop.artifacts import _s3

    transfer = {
        "upload": f"sha256 first, then parts of {_s3.UPLOAD_PART_MIN >> 20} MiB, "
        f"{_s3.UPLOAD_PARALLEL} in flight, CRC32",
        "download": f"ranges of {_s3.DOWNLOAD_PART_MIN >> 20}-{_s3.DOWNLOAD_PART_MAX >> 20} MiB, "
        f"{_s3.DOWNLOAD_PARALLEL} in flight, sha256 of every byte",
    }
    return {"upload": up, "download": down, "transfer": transfer}


def _mlflow_transfer() -> dict[str, str]:
    """What MLflow's S3 transfers use here: boto3's TransferConfig defaults (MLflow passes none)."""
    import boto3
    from boto3.s3 import transfer

    cfg = transfer.TransferConfig()
    crt = bool(getattr(transfer, "HAS_CRT", False)) and transfer._should_use_crt(cfg)
    parts = f"{cfg.multipart_chunksize >> 20} MiB from {cfg.multipart_threshold >> 20} MiB"
    return {
        "client": f"boto3 {boto3.__version__} upload_file / download_file, CRT {crt}",
        "upload": f"parts of {parts}, {cfg.max_request_concurrency} threads",
        "download": f"ranged GETs of {parts}, {cfg.max_request_concurrency} threads",
    }


def worker_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow

    tmp = Path(args.tmp)
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    if args.backend == "s3":
        location = f"s3://{BUCKET}/mlflow-{uuid.uuid4().hex}"
    else:
        location = (tmp / "mlflow-artifacts").as_uri()
    exp = mlflow.create_experiment("bench-artifacts", artifact_location=location)
    src = Path(args.file)
    up, down = [], []
    for rep in range(args.repeat):
        _stamp(src, rep)
        with mlflow.start_run(experiment_id=exp) as run:
            t0 = time.perf_counter()
            mlflow.log_artifact(str(src), artifact_path="model")
            up.append(time.perf_counter() - t0)
        dest = tmp / f"mlflow-dl-{rep}"
        dest.mkdir()
        t0 = time.perf_counter()
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="model", dst_path=str(dest)
        )
        down.append(time.perf_counter() - t0)
        shutil.rmtree(dest)
    transfer = _mlflow_transfer() if args.backend == "s3" else {}
    return {"upload": up, "download": down, "transfer": transfer}


# ============================================================================================ driver
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("moto server did not start within 30 s")
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=BUCKET)
    return proc, endpoint


def _mlflow_python() -> Path | None:
    python = MLFLOW_VENV / "bin" / "python"
    try:
        if not python.exists():
            print(f"[bench] creating {MLFLOW_VENV}", file=sys.stderr)
            base = shutil.which("python3.11") or sys.executable
            subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
        probe = subprocess.run(
            [str(python), "-c", "import mlflow, boto3"], capture_output=True, check=False
        )
        if probe.returncode != 0:
            print(f"[bench] installing {MLFLOW_REQUIREMENTS} into {MLFLOW_VENV}", file=sys.stderr)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *MLFLOW_REQUIREMENTS], check=True
            )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"[bench] MLflow unavailable, measuring mloop only: {exc}", file=sys.stderr)
        return None
    return python


def _run_worker(
    python: Path | str,
    engine: str,
    backend: str,
    endpoint: str,
    src: Path,
    repeat: int,
    tmpdir: str | None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-art-{engine}-", dir=tmpdir) as tmp:
        out = Path(tmp) / "result.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "MLFLOW_"))}
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            MLFLOW_S3_ENDPOINT_URL=endpoint,
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="1",
            MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
            PYTHONWARNINGS="ignore",
            GIT_PYTHON_REFRESH="quiet",
        )
        cmd = [str(python), __file__, "--worker", engine, "--backend", backend]
        cmd += ["--endpoint", endpoint, "--file", str(src), "--repeat", str(repeat)]
        cmd += ["--tmp", tmp, "--out", str(out)]
        proc = subprocess.run(cmd, env=env, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{engine}/{backend} worker failed (exit {proc.returncode})")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mb", type=int, default=100, help="file size in MB (10^6 bytes)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--tmpdir",
        help="where files and local stores go (default: system temp). On a VM disk, local numbers "
        "after the first few hundred MB are the disk's writeback speed for both engines; "
        "/dev/shm measures the software instead.",
    )
    p.add_argument("--no-s3", action="store_true")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--worker", choices=["mloop", "mlflow"], help=argparse.SUPPRESS)
    p.add_argument("--backend", choices=["local", "s3"], help=argparse.SUPPRESS)
    p.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        fn = worker_mloop if args.worker == "mloop" else worker_mlflow
        Path(args.out).write_text(json.dumps(fn(args)))
        return

    mlflow_python = None if args.no_mlflow else _mlflow_python()
    backends = ["local"] if args.no_s3 else ["local", "s3"]
    moto, endpoint = (None, "") if args.no_s3 else _start_moto()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-art-src-", dir=args.tmpdir) as tmp:
            src = Path(tmp) / "big.bin"
            _make_file(src, args.mb)
            for backend in backends:
                results[backend] = {}
                engines: list[tuple[str, Path | str]] = [("mloop", sys.executable)]
                if mlflow_python is not None:
                    engines.append(("mlflow", mlflow_python))
                for engine, python in engines:
                    print(f"[bench] {engine} on {backend} ...", file=sys.stderr)
                    results[backend][engine] = _run_worker(
                        python, engine, backend, endpoint, src, args.repeat, args.tmpdir
                    )
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)

    rows, summary = [], []
    for backend, by_engine in results.items():
        for op in ("upload", "download"):
            rate = {
                e: args.mb / statistics.median(r[op]) for e, r in by_engine.items() if r.get(op)
            }
            ratio = rate["mloop"] / rate["mlflow"] if "mlflow" in rate else None
            rows.append(
                [
                    backend,
                    op,
                    f"{rate['mloop']:,.0f} MB/s",
                    f"{rate['mlflow']:,.0f} MB/s" if "mlflow" in rate else "-",
                    "-" if ratio is None else f"{ratio:.2f}x",
                ]
            )
            summary.append(
                {"backend": backend, "op": op, "MBps": rate, "ratio_mloop_over_mlflow": ratio}
            )
    headers = ["backend", "op", "mloop", "MLflow", "mloop/MLflow"]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    where = args.tmpdir or tempfile.gettempdir()
    print(f"\n{args.mb} MB artifact in {where}, median of {args.repeat} (higher MB/s is better)")
    for row in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    for engine, r in results.get("s3", {}).items():
        for op, how in r.get("transfer", {}).items():
            print(f"  s3 {engine} {op}: {how}")
    if "s3" in results:
        print(
            "  moto reads the whole object for every GET: a download costs per request there "
            "(see this file's docstring)."
        )
    out = BENCH_DIR / "results" / "artifacts.json"
    out.parent.mkdir(exist_ok=True)
    meta: dict[str, Any] = {
        "mb": args.mb,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "tmpdir": args.tmpdir or tempfile.gettempdir(),
    }
    out.write_text(json.dumps({"meta": meta, "summary": summary, "raw": results}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
