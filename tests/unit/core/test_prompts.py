"""Prompt rendering: slots, token types, truncation that keeps the newest tokens and the mask."""

from __future__ import annotations

import pytest

from logprompt.parsing import template_id
from logprompt.prompts import (
    PROMPT_TEMPLATES,
    TYPE_PROMPT,
    TYPE_SEMANTIC,
    TYPE_SEQUENTIAL,
    PromptConfig,
    PromptEncoder,
    pad_batch,
    render_text,
    semantic_words,
)

from .tokenizer_fixture import tiny_tokenizer

TEMPLATES = ["Receiving block <*> src <*> dest <*>", "PacketResponder <*> for block <*> terminating"]
IDS = [template_id(t) for t in TEMPLATES]


def encoder(**kwargs: object) -> PromptEncoder:
    return PromptEncoder(tiny_tokenizer(), PromptConfig(**kwargs))  # type: ignore[arg-type]


def test_semantic_words_once_in_order_of_first_appearance() -> None:
    assert semantic_words(TEMPLATES) == [
        "receiving", "block", "src", "dest", "packet", "responder", "for", "terminating"]


def test_render_text_of_the_default_template() -> None:
    text = render_text(TEMPLATES, IDS, PromptConfig())
    assert text == (f"semantic receiving block src dest packet responder for terminating "
                    f"sequential {IDS[0]} {IDS[1]} it is [MASK]")


def test_token_types_mark_semantic_sequential_and_prompt_tokens() -> None:
    enc = encoder()
    prompt = enc.encode(TEMPLATES, IDS)
    tok = tiny_tokenizer()
    tokens = [tok.id_to_token(i) for i in prompt.input_ids]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[prompt.mask_index] == "[MASK]"
    by_type = {t: [tok for tok, ty in zip(tokens, prompt.token_type_ids, strict=True) if ty == t]
               for t in (TYPE_PROMPT, TYPE_SEMANTIC, TYPE_SEQUENTIAL)}
    assert by_type[TYPE_SEMANTIC][:2] == ["receiving", "block"]
    assert "".join(by_type[TYPE_SEQUENTIAL]).replace("##", "") == IDS[0] + IDS[1]
    assert by_type[TYPE_PROMPT] == ["[CLS]", "semantic", "sequential", "it", "is", "[MASK]", "[SEP]"]


def test_truncation_keeps_the_newest_tokens_and_the_mask() -> None:
    enc = encoder(max_length=20)
    many = [f"job {i} done" for i in range(50)]
    ids = [template_id(t) for t in many]
    prompt = enc.encode(many, ids)
    assert len(prompt.input_ids) == 20
    assert prompt.input_ids[prompt.mask_index] == enc.mask_id
    seq = [i for i, t in zip(prompt.input_ids, prompt.token_type_ids, strict=True)
           if t == TYPE_SEQUENTIAL]
    full_seq = [i for tid in ids for i in tiny_tokenizer().encode(tid, add_special_tokens=False).ids]
    assert seq == full_seq[-len(seq):]  # the most recent events survive


def test_short_side_gives_its_unused_budget_to_the_other() -> None:
    enc = encoder(max_length=24)
    prompt = enc.encode(["disk failure"], [template_id("x")] * 30)
    types = prompt.token_type_ids
    assert types.count(TYPE_SEMANTIC) == 2
    assert types.count(TYPE_SEQUENTIAL) == 24 - 7 - 2


@pytest.mark.parametrize("name", sorted(PROMPT_TEMPLATES))
def test_every_template_of_the_repository_encodes(name: str) -> None:
    enc = encoder(template=name, soft_tokens=2)
    prompt = enc.encode(TEMPLATES, IDS)
    assert prompt.input_ids[prompt.mask_index] == enc.mask_id
    if name == "soft":
        assert enc.soft_ids == [5, 6]  # [unused0], [unused1]
        assert all(i in prompt.input_ids for i in enc.soft_ids)


def test_pad_batch_right_pads_and_masks() -> None:
    enc = encoder()
    a, b = enc.encode(TEMPLATES[:1], IDS[:1]), enc.encode(TEMPLATES, IDS)
    batch = pad_batch([a, b], enc.pad_id)
    assert batch["input_ids"].shape == (2, len(b.input_ids))
    assert batch["attention_mask"][0].sum() == len(a.input_ids)
    assert (batch["input_ids"][0, len(a.input_ids):] == enc.pad_id).all()


def test_unknown_template_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown prompt template"):
        PromptConfig(template="nope")


def test_index_sequence_ids_write_each_template_as_its_table_position() -> None:
    unseen = template_id("Disk failure on node <*>")
    enc = PromptEncoder(tiny_tokenizer(), PromptConfig(sequence_ids="index"), table_ids=IDS)
    prompt = enc.encode(TEMPLATES + ["Disk failure on node <*>"], IDS[::-1] + [unseen])
    tok = tiny_tokenizer()
    seq = [tok.id_to_token(i) for i, ty in zip(prompt.input_ids, prompt.token_type_ids, strict=True)
           if ty == TYPE_SEQUENTIAL]
    assert seq == ["2", "1", "0"]  # 1-based positions; 0 for a template outside the table


def test_index_sequence_ids_fit_more_events_than_hashes() -> None:
    many = [f"job {i} done" for i in range(30)]
    ids = [template_id(t) for t in many]
    by_hash = encoder(max_length=48).encode(many, ids)
    by_index = PromptEncoder(tiny_tokenizer(), PromptConfig(max_length=48, sequence_ids="index"),
                             table_ids=ids[:9]).encode(many, ids)
    tok = tiny_tokenizer()
    seq_hash, seq_index = ("".join(tok.id_to_token(i) for i, ty in
                                   zip(p.input_ids, p.token_type_ids, strict=True)
                                   if ty == TYPE_SEQUENTIAL).replace("##", "")
                           for p in (by_hash, by_index))
    assert seq_index == "123456789" + "0" * 21  # one word piece per event: all 30 fit
    assert "".join(ids).endswith(seq_hash) and len(seq_hash) < 8 * 6  # under 6 of 30 events


def test_index_sequence_ids_need_the_table() -> None:
    with pytest.raises(ValueError, match="template table"):
        PromptEncoder(tiny_tokenizer(), PromptConfig(sequence_ids="index"))
