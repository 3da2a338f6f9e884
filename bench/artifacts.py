"""Artifact benchmark: upload and download of one large file through mloop and through MLflow.

    .venv/bin/python bench/artifacts.py [--mb 100] [--repeat 3] [--no-s3] [--no-mlflow]
    .venv/bin/python bench/artifacts.py --mb 1000 --no-local --upload-only --floor --mloop-s3 16:4

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
checksums; no CRT). mloop hashes the file first (its key is the content hash; a stored blob is not
sent again), then sends 8 MiB parts, 4 at a time; downloads fetch ranges of 64-256 MiB, 4 at once, and
hash every byte before the file appears.

Read the S3 rows knowing what moto does: it reads the whole object for every GET, ranged or not
(~0.5 s of server CPU per request for 1 GB), so a download costs in proportion to its number of
requests (MLflow: size / 8 MiB; mloop: 4), not its bytes, unlike real S3. Uploads are bound by
moto's CPU (an MD5 and a disk write per part, then one thread joining the parts at completion).
Every S3 upload records its client's CPU time and moto's (from /proc), and ``--floor`` adds the
least work any client can do to put the file into that server (see ``worker_floor``): what it
takes bounds the ratio any engine can reach against MLflow there. ``--mloop-s3 PART:PARALLEL``
times mloop's upload with other part sizes and parts in flight (set in the worker).

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


class _CpuMeter:
    """Wall time, this process's CPU time (all threads) and the S3 server's, around a block."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.rows: list[dict[str, float]] = []

    def __enter__(self) -> None:
        self._start = (time.perf_counter(), time.process_time(), _proc_cpu(self.server_pid))

    def __exit__(self, *exc: object) -> None:
        wall, client, server = self._start
        self.rows.append(
            {
                "wall": time.perf_counter() - wall,
                "client_cpu": time.process_time() - client,
                "server_cpu": _proc_cpu(self.server_pid) - server,
            }
        )


def _set_mloop_upload(spec: str) -> dict[str, Any]:
    """Apply ``PART_MIB:PARALLEL[:unsigned]`` to mloop's S3 upload by setting the module's
    constants in this worker (the source is not changed); returns extra storage options."""
    from mloop.artifacts import _s3

    mib, parallel, *rest = spec.split(":")
    _s3.UPLOAD_PART_MIN = int(mib) << 20
    _s3.UPLOAD_PARALLEL = int(parallel)
    if rest == ["unsigned"]:  # botocore signs payloads (a sha256) on http:// endpoints only
        return {"config_kwargs": {"s3": {"payload_signing_enabled": False}}}
    if rest:
        raise SystemExit(f"`--mloop-s3` must be PART_MIB:PARALLEL[:unsigned]; got {spec!r}")
    return {}


def worker_mloop(args: argparse.Namespace) -> dict[str, Any]:
    from mloop.artifacts import BlobStore, download_tree, upload_tree

    extra = _set_mloop_upload(args.variant) if args.variant else {}
    if args.backend == "s3":
        store = BlobStore(
            f"s3://{BUCKET}/mloop-{uuid.uuid4().hex}",
            storage_options={
                "endpoint_url": args.endpoint,
                "key": "testing",
                "secret": "testing",
                **extra,
            },
        )
    else:
        store = BlobStore(Path(args.tmp) / "mloop-store")
    src = Path(args.file)
    meter, down = _CpuMeter(args.moto_pid), []
    for rep in range(args.repeat):
        _stamp(src, rep)
        with meter:
            entries = upload_tree(store, src, artifact_path="model")
        if args.upload_only:
            continue
        dest = Path(args.tmp) / f"mloop-dl-{rep}"
        t0 = time.perf_counter()
        download_tree(store, entries, dest)
        down.append(time.perf_counter() - t0)
        shutil.rmtree(dest)
    from mloop.artifacts import _s3

    up = [r["wall"] for r in meter.rows]
    signed = "unsigned payload" if extra else "sha256-signed payload"
    transfer = {
        "upload": f"content hash first, then parts of {_s3.UPLOAD_PART_MIN >> 20} MiB, "
        f"{_s3.UPLOAD_PARALLEL} in flight, CRC32, {signed}",
        "download": f"ranges of {_s3.DOWNLOAD_PART_MIN >> 20}-{_s3.DOWNLOAD_PART_MAX >> 20} MiB, "
        f"{_s3.DOWNLOAD_PARALLEL} in flight, BLAKE3 of every byte (the blob's name)",
    }
    return {"upload": up, "download": down, "cpu": meter.rows, "transfer": transfer}


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
    meter, down = _CpuMeter(args.moto_pid), []
    for rep in range(args.repeat):
        _stamp(src, rep)
        with mlflow.start_run(experiment_id=exp) as run, meter:
            mlflow.log_artifact(str(src), artifact_path="model")
        if args.upload_only:
            continue
        dest = tmp / f"mlflow-dl-{rep}"
        dest.mkdir()
        t0 = time.perf_counter()
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="model", dst_path=str(dest)
        )
        down.append(time.perf_counter() - t0)
        shutil.rmtree(dest)
    transfer = _mlflow_transfer() if args.backend == "s3" else {}
    up = [r["wall"] for r in meter.rows]
    return {"upload": up, "download": down, "cpu": meter.rows, "transfer": transfer}


# ============================================================================================= floor
# The least work any client can do to put the file into moto as one object: SigV4-signed headers
# with an unsigned payload (S3 accepts "UNSIGNED-PAYLOAD"), each part sent from the page cache
# with sendfile (the client never reads the bytes), one keep-alive connection per thread.
FLOOR_PARTS_MIB = (8, 16, 64)
FLOOR_THREADS = (1, 2, 4, 10)


class _Floor:
    """Raw HTTP against one S3 endpoint: botocore only signs headers and sends the two small
    requests (create and complete); parts and single PUTs go through ``http.client``."""

    def __init__(self, endpoint: str, path: Path) -> None:
        import threading
        import urllib.parse

        import boto3
        from botocore.auth import S3SigV4Auth
        from botocore.config import Config
        from botocore.credentials import Credentials

        self.endpoint, self.path, self.size = endpoint, path, path.stat().st_size
        self.netloc = urllib.parse.urlsplit(endpoint).netloc
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                s3={"payload_signing_enabled": False},
                request_checksum_calculation="when_required",
            ),
        )

        class _UnsignedPayload(S3SigV4Auth):
            def _should_sha256_sign_payload(self, request: Any) -> bool:
                return False

        self._auth = _UnsignedPayload(Credentials("testing", "testing"), "s3", "us-east-1")
        self._local = threading.local()

    def _headers(self, url: str, extra: dict[str, str]) -> dict[str, str]:
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method="PUT", url=url, headers=extra)
        self._auth.add_auth(req)
        return dict(req.headers.items())

    def _conn(self) -> Any:
        import http.client

        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.netloc, timeout=300)
        return conn

    def put(self, url: str, offset: int, n: int, crc32: bool) -> dict[str, str]:
        """PUT ``n`` bytes of the file from ``offset`` to ``url``; returns the response headers."""
        import base64
        import binascii

        extra = {"Host": self.netloc, "Content-Length": str(n)}
        data = b""
        if crc32:  # the one client-side pass the protocol asks for when the upload declares it
            data = os.pread(self._file().fileno(), n, offset)
            extra["x-amz-checksum-crc32"] = base64.b64encode(
                binascii.crc32(data).to_bytes(4, "big")
            ).decode()
            extra["x-amz-sdk-checksum-algorithm"] = "CRC32"
        headers = self._headers(url, extra)
        conn = self._conn()
        target = url[len(self.endpoint) :]
        conn.putrequest("PUT", target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if crc32:
            conn.sock.sendall(data)
        elif conn.sock.sendfile(self._file(), offset, n) != n:  # os.sendfile, with timeouts
            raise RuntimeError(f"{self.path} is shorter than {offset + n} bytes")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"PUT {target} -> {resp.status}: {body[:300]!r}")
        return {k.lower(): v for k, v in resp.getheaders()}

    def _file(self) -> Any:
        """This thread's handle on the file (``socket.sendfile`` moves its position)."""
        f = getattr(self._local, "file", None)
        if f is None:
            f = self._local.file = open(self.path, "rb")  # noqa: SIM115 (lives with the thread)
        return f

    def single_put(self, key: str) -> None:
        self.put(f"{self.endpoint}/{BUCKET}/{key}", 0, self.size, crc32=False)

    def multipart(self, key: str, part: int, threads: int, crc32: bool) -> None:
        import urllib.parse
        from concurrent.futures import ThreadPoolExecutor

        create: dict[str, Any] = {"Bucket": BUCKET, "Key": key}
        if crc32:
            create["ChecksumAlgorithm"] = "CRC32"
        upload_id = self.client.create_multipart_upload(**create)["UploadId"]
        base = f"{self.endpoint}/{BUCKET}/{key}?uploadId={urllib.parse.quote(upload_id, safe='')}"

        def one(number: int, offset: int) -> dict[str, Any]:
            n = min(part, self.size - offset)
            headers = self.put(f"{base}&partNumber={number}", offset, n, crc32)
            done = {"PartNumber": number, "ETag": headers["etag"]}
            if crc32:
                done["ChecksumCRC32"] = headers.get("x-amz-checksum-crc32", "")
            return done

        plan = list(enumerate(range(0, self.size, part), 1))
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda a: one(*a), plan))
        self.client.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )


def _floor_check(floor: _Floor, key: str) -> None:
    """The object is whole: its size, and its first and last MiB, equal the file's."""
    head = floor.client.head_object(Bucket=BUCKET, Key=key)
    if head["ContentLength"] != floor.size:
        raise RuntimeError(f"floor: {key} has {head['ContentLength']} bytes, not {floor.size}")
    with open(floor.path, "rb") as f:
        for start in (0, max(0, floor.size - (1 << 20))):
            end = min(floor.size, start + (1 << 20)) - 1
            got = floor.client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{end}")
            f.seek(start)
            if got["Body"].read() != f.read(end - start + 1):
                raise RuntimeError(f"floor: {key} differs from the file at byte {start}")


def worker_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Every floor variant once (checked, then deleted), then the fastest ``--repeat`` times."""
    floor = _Floor(args.endpoint, Path(args.file))
    variants: list[tuple[str, Any]] = [("single PUT", floor.single_put)]
    for crc32 in (False, True):
        for mib in FLOOR_PARTS_MIB:
            for threads in FLOOR_THREADS:
                name = f"{mib} MiB x {threads}" + (", CRC32" if crc32 else "")
                variants.append(
                    (name, lambda k, p=mib << 20, t=threads, c=crc32: floor.multipart(k, p, t, c))
                )

    def timed(name: str, fn: Any, check: bool) -> dict[str, float]:
        key, meter = f"floor-{uuid.uuid4().hex}", _CpuMeter(args.moto_pid)
        with meter:
            fn(key)
        if check:
            _floor_check(floor, key)
        floor.client.delete_object(Bucket=BUCKET, Key=key)
        print(f"[bench] floor {name}: {meter.rows[0]['wall']:.2f} s", file=sys.stderr)
        return meter.rows[0]

    if args.variant:  # one variant only, its first upload checked (later rounds; profiling)
        fn = dict(variants).get(args.variant)
        if fn is None:
            raise SystemExit(f"no floor variant is called {args.variant!r}")
        best, grid = args.variant, {}
        runs = [timed(best, fn, check=i == 0) for i in range(args.repeat)]
    else:
        grid = {name: timed(name, fn, check=True) for name, fn in variants}
        best = min(grid, key=lambda name: grid[name]["wall"])
        runs = [timed(best, dict(variants)[best], check=False) for _ in range(args.repeat)]
    return {
        "variant": best,
        "upload": [r["wall"] for r in runs],
        "cpu": runs,
        "grid": grid,
        "transfer": {"upload": f"raw HTTP, {best}, unsigned payload, sendfile"},
    }


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) the process ``pid`` has used, from /proc; 0.0 elsewhere."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    extra: list[str],
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
        cmd += ["--tmp", tmp, "--out", str(out), *extra]
        proc = subprocess.run(cmd, env=env, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{engine}/{backend} worker failed (exit {proc.returncode})")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _merge_round(into: dict[str, dict[str, Any]], name: str, got: dict[str, Any]) -> None:
    """Add one round's repetition of engine ``name`` to what earlier rounds measured."""
    if name not in into:
        into[name] = got
        return
    for field in ("upload", "download", "cpu"):
        into[name][field] = into[name].get(field, []) + got.get(field, [])


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _s3_upload_table(by_engine: dict[str, dict[str, Any]], mb: int) -> dict[str, Any]:
    """Print every engine's S3 upload beside MLflow's with its CPU use; returns the summary."""
    med = statistics.median
    base = med(by_engine["mlflow"]["upload"]) if "mlflow" in by_engine else None
    rows, summary = [], {}
    for engine, r in by_engine.items():
        if not r.get("upload"):
            continue
        wall = med(r["upload"])
        cpu = r.get("cpu") or []
        client = med(c["client_cpu"] for c in cpu) if cpu else float("nan")
        server = med(c["server_cpu"] for c in cpu) if cpu else float("nan")
        ratio = base / wall if base else None
        summary[engine] = {"s": wall, "client_cpu_s": client, "server_cpu_s": server}
        summary[engine]["mlflow_over_this"] = ratio
        rows.append(
            [
                engine,
                f"{wall:.2f}",
                f"{mb / wall:,.0f}",
                f"{client:.2f}",
                f"{server:.2f}",
                "-" if ratio is None else f"{ratio:.2f}x",
                r.get("transfer", {}).get("upload", ""),
            ]
        )
    print(f"\nS3 upload of {mb} MB to moto, median (client and server share 2 cores):")
    headers = ["engine", "s", "MB/s", "client CPU s", "moto CPU s", "MLflow s / this", "how"]
    _print_table(headers, rows)
    return summary


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
    p.add_argument("--no-local", action="store_true", help="S3 only")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--upload-only", action="store_true", help="time uploads only")
    p.add_argument(
        "--floor",
        action="store_true",
        help="also measure the fastest raw-HTTP upload to moto (every part size and thread count "
        "of FLOOR_PARTS_MIB x FLOOR_THREADS, with and without CRC32, and a single PUT, once "
        "each; then the fastest --repeat times): the most any client can get from that server",
    )
    p.add_argument(
        "--mloop-s3",
        action="append",
        default=[],
        metavar="PART_MIB:PARALLEL[:unsigned]",
        help="also time mloop's S3 upload (no download) with these part size and parts in flight "
        "(set in the worker, not in the source); ':unsigned' turns off payload signing",
    )
    p.add_argument("--worker", choices=["mloop", "mlflow", "floor"], help=argparse.SUPPRESS)
    p.add_argument("--backend", choices=["local", "s3"], help=argparse.SUPPRESS)
    p.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--moto-pid", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--variant", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        workers = {"mloop": worker_mloop, "mlflow": worker_mlflow, "floor": worker_floor}
        Path(args.out).write_text(json.dumps(workers[args.worker](args)))
        return
    if args.no_s3 and (args.floor or args.mloop_s3):
        p.error("--floor and --mloop-s3 measure S3: drop --no-s3")
    for spec in args.mloop_s3:
        parts = spec.split(":")
        if not (2 <= len(parts) <= 3 and all(x.isdigit() for x in parts[:2])) or parts[2:] not in (
            [],
            ["unsigned"],
        ):
            p.error(f"`--mloop-s3` must be PART_MIB:PARALLEL[:unsigned]; got {spec!r}")

    mlflow_python = None if args.no_mlflow else _mlflow_python()
    backends = [b for b, off in (("local", args.no_local), ("s3", args.no_s3)) if not off]
    moto, endpoint = (None, "") if args.no_s3 else _start_moto()
    moto_pid = ["--moto-pid", str(moto.pid)] if moto is not None else []
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-art-src-", dir=args.tmpdir) as tmp:
            src = Path(tmp) / "big.bin"
            _make_file(src, args.mb)
            for backend in backends:
                results[backend] = {}
                only = ["--upload-only"] if args.upload_only else []
                runs: list[tuple[str, str, Path | str, list[str]]] = [
                    ("mloop", "mloop", sys.executable, only)
                ]
                if mlflow_python is not None:
                    runs.append(("mlflow", "mlflow", mlflow_python, only))
                if backend == "s3":
                    for spec in args.mloop_s3:
                        extra = ["--variant", spec, "--upload-only"]
                        runs.append((f"mloop {spec}", "mloop", sys.executable, extra))
                    if args.floor:
                        runs.append(("floor", "floor", sys.executable, []))
                # Rounds of one repetition per engine, engines alternating, so that a burst of
                # load from elsewhere on the machine does not land on one engine's repetitions.
                for rnd in range(args.repeat):
                    for name, engine, python, extra in runs:
                        print(f"[bench] {name} on {backend}, round {rnd + 1} ...", file=sys.stderr)
                        if name == "floor" and rnd > 0:  # the grid ran in the first round
                            extra = ["--variant", results[backend]["floor"]["variant"]]
                        got = _run_worker(
                            python,
                            engine,
                            backend,
                            endpoint,
                            src,
                            1,
                            args.tmpdir,
                            [*extra, *(moto_pid if backend == "s3" else [])],
                        )
                        _merge_round(results[backend], name, got)
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)

    rows, summary = [], []
    for backend, by_engine in results.items():
        for op in ("upload", "download"):
            rate = {
                e: args.mb / statistics.median(by_engine[e][op])
                for e in ("mloop", "mlflow")
                if by_engine.get(e, {}).get(op)
            }
            if "mloop" not in rate:
                continue
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
    where = args.tmpdir or tempfile.gettempdir()
    print(f"\n{args.mb} MB artifact in {where}, median of {args.repeat} (higher MB/s is better)")
    _print_table(["backend", "op", "mloop", "MLflow", "mloop/MLflow"], rows)
    for engine in ("mloop", "mlflow"):
        for op, how in results.get("s3", {}).get(engine, {}).get("transfer", {}).items():
            print(f"  s3 {engine} {op}: {how}")
    if "s3" in results:
        print(
            "  moto reads the whole object for every GET: a download costs per request there "
            "(see this file's docstring)."
        )
    s3_upload: dict[str, Any] = {}
    if "s3" in results:
        s3_upload = _s3_upload_table(results["s3"], args.mb)
    floor = results.get("s3", {}).get("floor")
    if floor is not None:
        print("\nfloor variants, one run each (fastest first):")
        grid = sorted(floor["grid"].items(), key=lambda kv: kv[1]["wall"])
        _print_table(
            ["variant", "s", "client CPU s", "moto CPU s"],
            [
                [name, f"{g['wall']:.2f}", f"{g['client_cpu']:.2f}", f"{g['server_cpu']:.2f}"]
                for name, g in grid
            ],
        )
        best = s3_upload["floor"].get("mlflow_over_this")
        if best is not None:
            print(
                f"\nbest possible S3 upload ratio against this server (MLflow s / floor s): "
                f"{best:.2f}x (issue 17 asks >= 1.5x)"
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
    report = {"meta": meta, "summary": summary, "s3_upload": s3_upload, "raw": results}
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
