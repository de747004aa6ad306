"""The model's forward contract, its split (cached lower layers) forward, and the checkpoint."""

from pathlib import Path

import pytest
import torch

from logprompt.parsing import TemplateTable
from logprompt.pipeline import PipelineConfig
from logprompt.prompts import PromptConfig, PromptEncoder, pad_batch
from training.model import (
    assemble_ensemble,
    build_model,
    default_base_model,
    load_checkpoint,
    save_checkpoint,
)
from training.partial import LowerLayerCache


@pytest.fixture(scope="module", params=["semantic_sequential", "soft"])
def model_and_batch(request):  # type: ignore[no-untyped-def]
    soft = ("[unused0]", "[unused1]") if request.param == "soft" else ()
    model, tokenizer = build_model(mode="soft" if soft else "full", soft_tokens=soft)
    model.eval()
    encoder = PromptEncoder(tokenizer, PromptConfig(template=request.param, max_length=48))
    prompts = [encoder.encode(["Receiving block <*> src <*>"], ["0a1b2c3d"]),
               encoder.encode(["disk error on <*>"] * 3, ["ffee0011", "aabbccdd"] * 4)]
    return model, encoder, prompts


def test_forward_gives_two_logits_and_finds_the_mask(model_and_batch) -> None:  # type: ignore[no-untyped-def]
    model, encoder, prompts = model_and_batch
    batch = {k: torch.from_numpy(v) for k, v in pad_batch(prompts, encoder.pad_id).items()}
    assert batch["token_type_ids"].max() == 2
    with torch.no_grad():
        logits = model(**batch)
        alone = model(**{k: v[:1, : len(prompts[0].input_ids)] for k, v in batch.items()})
    assert logits.shape == (2, 2)
    # Padding and the other row do not change a row's logits.
    torch.testing.assert_close(logits[:1], alone, atol=1e-5, rtol=1e-4)
    assert model.encoder.config.type_vocab_size == 3


def test_cached_lower_layers_give_the_same_logits(model_and_batch) -> None:  # type: ignore[no-untyped-def]
    model, encoder, prompts = model_and_batch
    batch = {k: torch.from_numpy(v) for k, v in pad_batch(prompts, encoder.pad_id).items()}
    cache = LowerLayerCache(model, 4, encoder.pad_id, torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(cache.logits(prompts), model(**batch), atol=1e-5, rtol=1e-4)


def test_checkpoint_round_trip(model_and_batch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, encoder, prompts = model_and_batch
    batch = {k: torch.from_numpy(v) for k, v in pad_batch(prompts, encoder.pad_id).items()}
    save_checkpoint(tmp_path, model, base_model=default_base_model(),
                    pipeline=PipelineConfig(), table=TemplateTable(templates=("a <*>",)),
                    meta={"threshold": 0.25, "dataset": "x"})
    loaded, info = load_checkpoint(tmp_path)
    assert info["threshold"] == 0.25 and info["mask_token_id"] == encoder.mask_id
    assert info["verbalizer"]["anomaly"] == ["error", "failure"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch), model(**batch))


def test_soft_mode_trains_head_and_soft_prompt_only(model_and_batch) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = model_and_batch
    if model.spec.mode != "soft":
        pytest.skip("soft mode only")
    encoder_params, head_params = model.trainable_parameters()
    assert encoder_params == []
    trainable = {id(p) for p in head_params}
    assert id(model.soft_embeddings.weight) in trainable
    assert id(model.encoder.embeddings.word_embeddings.weight) not in trainable


def _member(seed: int):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    model, _ = build_model()
    with torch.no_grad():  # members differ above the shared layers only
        for p in model.encoder.encoder.layer[4:].parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_ensemble_serves_the_mean_probability_of_its_members(tmp_path: Path) -> None:
    members = [_member(1), _member(2), _member(3)]
    ensemble = assemble_ensemble(members, shared_layers=4).eval()
    _, tokenizer = build_model()
    encoder = PromptEncoder(tokenizer, PromptConfig(max_length=48))
    prompts = [encoder.encode(["Receiving block <*> src <*>"], ["0a1b2c3d"]),
               encoder.encode(["disk error on <*>"] * 3, ["ffee0011", "aabbccdd"] * 4)]
    batch = {k: torch.from_numpy(v) for k, v in pad_batch(prompts, encoder.pad_id).items()}
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(**batch), -1) for m in members]).mean(0)
        served = torch.softmax(ensemble(**batch), -1)
        torch.testing.assert_close(served, mean, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(mean, torch.softmax(members[0](**batch), -1), atol=1e-3)
        cache = LowerLayerCache(ensemble, 4, encoder.pad_id, torch.device("cpu"))
        torch.testing.assert_close(cache.logits(prompts), ensemble(**batch), atol=1e-5,
                                   rtol=1e-4)
    save_checkpoint(tmp_path, ensemble, base_model=default_base_model(),
                    pipeline=PipelineConfig(), table=TemplateTable(templates=("a <*>",)),
                    meta={"threshold": 0.5, "dataset": "x"})
    loaded, info = load_checkpoint(tmp_path)
    assert info["model"]["members"] == 3 and info["model"]["shared_layers"] == 4
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch), ensemble(**batch))


def test_ensemble_refuses_members_with_different_shared_layers() -> None:
    members = [_member(1), _member(2)]
    with torch.no_grad():
        members[1].encoder.encoder.layer[0].output.dense.bias.add_(0.1)
    with pytest.raises(ValueError, match="member 2 differs"):
        assemble_ensemble(members, shared_layers=4)
    assert assemble_ensemble(members, shared_layers=0).spec.members == 2
