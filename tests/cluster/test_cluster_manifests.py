"""Every cluster YAML and manifest parses and holds what its tool needs; the launcher YAMLs pass
Ray's own validation and set only non-default keys; the sbatch script is valid bash that (run
against stand-ins for srun, scontrol and ray) starts a head and workers and runs the search."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHER = ["aws.yaml", "gcp.yaml"]


def load_all(rel: str) -> list[dict]:
    with open(CLUSTER / rel) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def ray_pin() -> str:
    """The Ray version pyproject.toml pins (ray[...]==X)."""
    m = re.search(r'"ray\[[^\]]*\]==([0-9.]+)"', (REPO / "pyproject.toml").read_text())
    assert m, "pyproject.toml pins no ray version"
    return m.group(1)


# ----------------------------------------------------------------------------- cluster launcher


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_yaml_has_head_and_gpu_worker_group(name: str) -> None:
    (cfg,) = load_all(name)
    assert cfg["cluster_name"]
    assert cfg["provider"]["type"] == name.removesuffix(".yaml")
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    assert "node_config" in head
    gpu = {n: t for n, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert len(gpu) == 1, f"one GPU worker group expected, got {sorted(gpu)}"
    (group,) = gpu.values()
    assert 0 <= group["min_workers"] <= group["max_workers"] <= cfg["max_workers"]
    assert group["resources"]["CPU"] >= 1 and "node_config" in group


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_yaml_installs_project_and_keeps_dashboard_private(name: str) -> None:
    (cfg,) = load_all(name)
    setup = "\n".join(cfg["setup_commands"])
    assert re.search(r"pip install .*torch .*download\.pytorch\.org/whl/cu\d+", setup)
    assert "pip install -q -e ~/atsuko" in setup
    assert setup.index("torch") < setup.index("-e ~/atsuko"), "CUDA torch before the project"
    mounts = cfg["file_mounts"]
    assert mounts["~/.ray"] == "~/.ray", "the token must reach every node"
    for d in ("atsuko", "search", "configs"):
        assert mounts[f"~/atsuko/{d}"] == f"./{d}"
    head = " ".join(cfg["head_start_ray_commands"])
    worker = " ".join(cfg["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in worker
    assert "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in head + worker
    images = cfg["docker"]["head_image"] + cfg["docker"]["worker_image"]
    assert images.count(f"rayproject/ray:{ray_pin()}-") == 2, "images pin the project's Ray"


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_yaml_passes_rays_validation(name: str) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    (cfg,) = load_all(name)
    validate_config(prepare_config(cfg))  # Ray's schema, after merging its defaults


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_yaml_sets_only_non_defaults_each_commented(name: str) -> None:
    import ray.autoscaler

    (cfg,) = load_all(name)
    kind = cfg["provider"]["type"]
    defaults_file = Path(ray.autoscaler.__file__).parent / kind / "defaults.yaml"
    defaults = yaml.safe_load(defaults_file.read_text())
    same = [k for k, v in cfg.items() if defaults.get(k) == v]
    assert not same, f"{name}: keys equal to Ray's defaults: {same}"
    lines = (CLUSTER / name).read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"[a-z_]+:", line):  # a top-level key
            assert lines[i - 1].startswith("#") or " # " in line, f"{name}: uncommented {line}"


# ----------------------------------------------------------------------------- KubeRay


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def _mounts(group: dict) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for c in _containers(group) for m in c["volumeMounts"]}


def _claims(group: dict) -> dict[str, str]:
    return {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in group["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }


def check_raycluster_spec(spec: dict) -> dict[str, str]:
    """Autoscaling GPU group, token auth, image, results volume on every pod; returns the
    results volume's mount path."""
    assert spec["rayVersion"] == ray_pin()
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", "never expose the dashboard"
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert all(c["image"] for c in _containers(head))
    gpu = [
        g
        for g in spec["workerGroupSpecs"]
        if any(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1 for c in _containers(g))
    ]
    assert len(gpu) == 1
    (g,) = gpu
    assert g["groupName"]
    assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    assert g["maxReplicas"] >= 1
    for group in (head, g):
        assert _claims(group)["results"] == "atsuko-results"
        for c in _containers(group):
            assert c["image"] == _containers(head)[0]["image"]
            assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
    assert _mounts(head)["results"] == _mounts(g)["results"]
    return _mounts(head)


def _one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"one {kind} expected"
    return found[0]


def test_raycluster_manifest() -> None:
    rc = _one(load_all("kuberay/raycluster.yaml"), "RayCluster")
    assert rc["apiVersion"] == "ray.io/v1"
    assert rc["metadata"]["name"]
    check_raycluster_spec(rc["spec"])


def test_rayjob_manifest_runs_the_search_onto_the_shared_volume() -> None:
    job = _one(load_all("kuberay/rayjob.yaml"), "RayJob")
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    mounts = check_raycluster_spec(spec["rayClusterSpec"])
    entry = spec["entrypoint"].split()
    assert entry[:2] == ["python", "search/run.py"]
    assert entry[entry.index("--dataset") + 1] == "mosei"
    assert entry[entry.index("--address") + 1] == "auto"
    out = entry[entry.index("--out") + 1]
    assert out.startswith(mounts["results"] + "/"), "results on the shared volume"
    data = entry[entry.index("--data") + 1]
    assert data.startswith(mounts["data"] + "/")
    assert not set(spec["entrypoint"]) & set("&|;"), "the submitter's shell would split it"
    assert spec["shutdownAfterJobFinishes"] is True


def test_pvcs_give_every_pod_the_results_volume() -> None:
    pvcs = {d["metadata"]["name"]: d for d in load_all("kuberay/pvc.yaml")}
    assert pvcs["atsuko-results"]["kind"] == "PersistentVolumeClaim"
    assert pvcs["atsuko-results"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "atsuko-data" in pvcs


def test_dockerfile_builds_on_the_pinned_ray_with_the_project() -> None:
    text = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray_pin()}-" in text
    assert "WORKDIR /app" in text and "pip install --no-cache-dir -e ." in text


# ----------------------------------------------------------------------------- SLURM

SBATCH = CLUSTER / "slurm" / "search.sbatch"


def test_sbatch_is_valid_bash_with_sbatch_directives() -> None:
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)
    directives = [ln for ln in SBATCH.read_text().splitlines() if ln.startswith("#SBATCH")]
    opts = " ".join(directives)
    for opt in ("--nodes=", "--ntasks-per-node=1", "--gpus-per-task=", "--cpus-per-task="):
        assert opt in opts


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_sbatch_starts_head_then_workers_then_the_search(tmp_path: Path) -> None:
    """Runs the script with stand-ins for scontrol, srun, ray and python that log their calls."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text("")
    _stub(bin_dir, "scontrol", "printf 'n0\\nn1\\nn2\\n'\n")
    _stub(
        bin_dir,
        "srun",
        f'echo "srun $*" >> {log}\n'
        'if [[ "$*" == *"hostname --ip-address"* ]]; then echo "10.0.0.7 fe80::1"; fi\n',
    )
    # `ray status` answers once the head's srun has run, as a real head would.
    _stub(
        bin_dir,
        "ray",
        f'if [ "$1" = status ]; then for _ in $(seq 100); do\n'
        f'  grep -q "ray start --head" {log} 2>/dev/null && break; sleep 0.05; done; fi\n'
        f'echo "ray $* auth=$RAY_AUTH_MODE" >> {log}\n',
    )
    _stub(
        bin_dir,
        "python",
        f'if [ "$1" = -c ]; then exec "{sys.executable}" "$@"; fi\n'
        f'echo "python $* address=$RAY_ADDRESS auth=$RAY_AUTH_MODE" >> {log}\n',
    )
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "ATSUKO_VENV": str(venv.parent),
        "SLURM_JOB_NODELIST": "n[0-2]",
        "SLURM_JOB_ID": "4242",
        "SLURM_CPUS_PER_TASK": "8",
        "SLURM_GPUS_PER_TASK": "1",
    }
    r = subprocess.run(
        ["bash", str(SBATCH), "--num-samples", "3"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text().splitlines()
    addr = "10.0.0.7:" + str(6379 + 4242 % 1000)
    head = next(c for c in calls if c.startswith("srun") and "ray start --head" in c)
    assert "-w n0" in head and f"--port={6379 + 4242 % 1000}" in head
    assert "--dashboard-host=127.0.0.1" in head and "--num-gpus=1" in head
    workers = [c for c in calls if c.startswith("srun") and f"--address={addr}" in c]
    assert sorted(c.split("-w ")[1].split()[0] for c in workers) == ["n1", "n2"]
    (search,) = [c for c in calls if c.startswith("python")]
    assert "search/run.py --dataset mosei" in search and "--address auto" in search
    assert f"address={addr}" in search and "auth=token" in search
    assert "--num-samples 3" in search and "--out" in search
    (status,) = [c for c in calls if c.startswith("ray status")]
    assert f"--address {addr}" in status and "auth=token" in status
    # The workers start only once the head answers; the search runs after the head is up.
    assert calls.index(head) < calls.index(status) < min(calls.index(w) for w in workers)
    assert calls.index(status) < calls.index(search)
    token = tmp_path / "home" / ".ray" / "auth_token"
    assert len(token.read_text().strip()) == 64
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
