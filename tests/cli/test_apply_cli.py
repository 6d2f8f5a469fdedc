"""``autoprune apply``: policy → compressed, fine-tuned, exported model with a report."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import torch

from autoprune.cli import main
from autoprune.coding import state_dict_from_apz
from autoprune.compress import prune_channels
from autoprune.core.policy import Policy
from autoprune.core.specs import discover_layers
from autoprune.deploy.apply import onnx_accuracy
from autoprune.workflow.baseline import build_for


def test_apply_writes_every_file_and_a_report(tmp_path, capsys, digits):
    assert main(["train", "--epochs", "2", "--runs-dir", str(tmp_path), "--json"]) == 0
    weights = json.loads(capsys.readouterr().out)["weights"]
    specs = discover_layers(build_for("demo", digits), digits.input_shape)
    policy = Policy.uniform(specs, keep_ratio=0.5, w_bits=8, a_bits=8)
    policy.save(tmp_path / "policy.json")
    out = tmp_path / "export"
    args = ["apply", str(tmp_path / "policy.json"), "--weights", weights, "--export", str(out)]
    assert main([*args, "--finetune-epochs", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for kind in ("state_dict", "onnx", "int8_onnx", "apz", "original_onnx", "report"):
        assert (out / report["files"][kind].split("/")[-1]).is_file(), kind
    assert report["compressed"]["macs"] < 0.4 * report["original"]["macs"]
    assert report["compressed"]["size_bytes"] < 0.2 * report["original"]["size_bytes"]
    assert 0.0 <= report["compressed"]["test_accuracy"] <= 1.0
    # the coded file rebuilds the exported model exactly, and ONNX agrees with it
    rebuilt = build_for("demo", digits)
    prune_channels(rebuilt, torch.zeros(1, 1, 8, 8), {n: 0.5 for n in ("conv1", "conv2", "conv3")})
    rebuilt.load_state_dict(state_dict_from_apz(out / "model.apz"))
    saved = torch.load(out / "model.pt", weights_only=True)
    for key, value in saved.items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"input": digits.x_test[:16].numpy()})[0]
    torch_logits = rebuilt.eval()(digits.x_test[:16]).detach().numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    assert (
        onnx_accuracy(out / "model.int8.onnx", digits.loader("test", 100))
        == (report["compressed"]["int8_test_accuracy"])
    )


def test_apply_bad_inputs_exit_2(tmp_path, capsys):
    assert main(["apply", str(tmp_path / "none.json"), "--weights", str(tmp_path / "w.pt")]) == 2
    assert "no such run or file" in capsys.readouterr().err
    assert main(["apply", str(tmp_path / "none.json")]) == 2
    assert "error: no such run or file" in capsys.readouterr().err
    (tmp_path / "policy.json").write_text("{}")
    assert main(["apply", str(tmp_path / "policy.json")]) == 2
    assert "--weights is required" in capsys.readouterr().err


def test_apply_refuses_a_damaged_evaluation_record_before_any_work(tmp_path, capsys, digits):
    model = build_for("demo", digits)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    specs = discover_layers(model, digits.input_shape)
    policy = Policy.uniform(specs, keep_ratio=0.5)
    policy.meta["evaluation"] = {"calib_batches": 4, "compression": {"reconstruct": "yes"}, "x": 1}
    policy.save(tmp_path / "policy.json")
    out = tmp_path / "out"
    args = ["apply", str(tmp_path / "policy.json"), "--weights", str(tmp_path / "w.pt")]
    assert main([*args, "--export", str(out)]) == 2
    err = capsys.readouterr().err
    assert "evaluation record has unknown field(s) ['x']" in err and "Traceback" not in err
    assert not out.exists()


def test_apply_says_when_a_policy_does_not_record_its_evaluation(tmp_path, capsys, digits):
    model = build_for("demo", digits)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    Policy.uniform(discover_layers(model, digits.input_shape), keep_ratio=0.5).save(
        tmp_path / "policy.json"
    )
    args = ["apply", str(tmp_path / "policy.json"), "--weights", str(tmp_path / "w.pt")]
    assert main([*args, "--export", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "does not record how it was scored" in captured.err
    assert "val_accuracy" in captured.out
