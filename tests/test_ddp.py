"""Data-parallel training under torchrun: two CPU processes (gloo) end with identical weights."""

import json
import os
import subprocess
import sys

from tests.conftest import make_sroie_folder


def test_two_processes_train_on_different_data_and_end_identical(tmp_path):
    folder = make_sroie_folder(tmp_path / "sroie", n=8, short=True)
    config = tmp_path / "ddp.yaml"
    config.write_text(
        f"datasets: [sroie]\ndata_dir: {{sroie: {folder}}}\ndev_fraction: 0.0\ninit: random\n"
        "model: {hidden_size: 48, num_layers: 2, num_heads: 4, intermediate_size: 96, image_size: 32, "
        "max_slots: 24, default_slots: 8}\n"
        f"batch_size: 2\nmax_steps: 4\ncheckpoint_every: 2\nbf16: false\nout: {tmp_path / 'run'}\n"
        f"cache_dir: {tmp_path / 'cache'}\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "docsprint.cli", "train", "kie", "--config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = json.loads((tmp_path / "run" / "ddp_check.json").read_text())
    assert check["world_size"] == 2
    assert check["data"][0] != check["data"][1]  # each rank trained on its own share of the batches
    assert check["identical"] and check["weights"][0] == check["weights"][1]  # gradients were averaged
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "last" / "trainer_state.json").is_file()  # resumable
    assert (tmp_path / "run" / "last" / "optimizer.safetensors").is_file()
