"""Tokens (vocabulary, targets, decoding) and the screen renderer (boxes, labels, instructions)."""

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.tasks.gui_agent import render
from edgekd.tasks.gui_agent import tokens as T


def test_tokenize_pads_cuts_and_maps_unknown_words() -> None:
    ids = T.tokenize("Type ALICE in the email field, please!", 8)
    assert ids.shape == (8,) and ids.dtype == np.int64
    assert T.detokenize(ids) == "type alice in the email field <unk>"
    assert (T.tokenize("click settings", 8)[2:] == T.PAD).all()
    assert len(T.tokenize("a " * 20, 5)) == 5


def test_every_template_word_and_paraphrase_is_in_the_vocabulary() -> None:
    for table in (T.TEXT_LABELS, T.FIELD_LABELS, T.TOGGLE_LABELS, T.ICONS):
        for k, v in table.items():
            assert k in T.WORD_ID and v in T.WORD_ID and k != v
    for canon, para in T.TEMPLATES.values():
        for tpl in (*canon, *para):
            text = tpl.format(l="settings", v="alice")
            assert T.UNK not in T.tokenize(text, 16)
    # the paraphrases are held out: no paraphrase word appears in a canonical template or label
    canon_words = {w for c, _ in T.TEMPLATES.values() for t in c for w in t.split()}
    para_labels = set(T.TEXT_LABELS.values()) | set(T.FIELD_LABELS.values()) | set(T.TOGGLE_LABELS.values())
    assert not para_labels & (canon_words | set(T.TEXT_LABELS) | set(T.FIELD_LABELS) | set(T.TOGGLE_LABELS))


def test_targets_round_trip_and_back_has_no_point() -> None:
    t = T.encode_target(T.CLICK, (37.0, 90.0), 128, 32)
    assert t.tolist() == [T.CLICK, 9, 22]
    px, py = T.bins_to_point(t[1], t[2], 128, 32)
    assert abs(px - 37.0) <= 2.0 and abs(py - 90.0) <= 2.0
    assert T.encode_target(T.BACK, None, 128, 32).tolist() == [T.BACK, T.IGNORE, T.IGNORE]
    assert T.encode_target(T.CLICK, (500.0, -3.0), 128, 32).tolist() == [T.CLICK, 31, 0]  # clipped
    with pytest.raises(ConfigError, match="action id 7"):
        T.encode_target(7, (1.0, 1.0), 128, 32)


def test_decode_restricts_the_action_to_the_four_actions() -> None:
    z = np.zeros((1, 3, 32), dtype=np.float32)
    z[0, 0, 10] = 50.0  # a filler entry may never win
    z[0, 0, 2] = 1.0
    z[0, 1, 5] = 1.0
    z[0, 2, 7] = 1.0
    assert T.decode_logits(z).tolist() == [[2, 5, 7]]
    with pytest.raises(ConfigError, match=r"\[batch, 3, V>=4\]"):
        T.decode_logits(np.zeros((2, 4)))


@pytest.mark.parametrize("cluttered", [False, True])
def test_screens_have_unique_labels_and_boxes_inside(cluttered: bool) -> None:
    rng = np.random.default_rng(0)
    for _ in range(15):
        img, els = render.render_screen(rng, 256, cluttered=cluttered, n_elements=(14, 22) if cluttered else (6, 11))
        assert img.size == (256, 256) and len(els) >= 2
        labels = [(e.kind == "icon", e.label) for e in els]
        assert len(set(labels)) == len(labels)
        for e in els:
            x0, y0, x1, y1 = e.box
            assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256


def test_cluttered_screens_are_denser() -> None:
    rng = np.random.default_rng(1)
    normal = np.mean([len(render.render_screen(rng, 256)[1]) for _ in range(20)])
    dense = np.mean([len(render.render_screen(rng, 256, cluttered=True, n_elements=(14, 22))[1]) for _ in range(20)])
    assert dense > normal + 2


def test_target_pixels_differ_from_background_and_instruction_names_target() -> None:
    rng = np.random.default_rng(3)
    for para in (False, True):
        for _ in range(20):
            s = render.make_sample(rng, 256, paraphrase=para, back_fraction=0.1)
            if s.target is None:
                assert s.action == T.BACK
                continue
            x0, y0, x1, y1 = s.target.box
            crop = np.asarray(s.image)[y0:y1, x0:x1].astype(float)
            assert crop.std() > 10  # something is drawn in the box
            table = {"icon": T.ICONS, "field": T.FIELD_LABELS, "toggle": T.TOGGLE_LABELS}.get(s.target.kind,
                                                                                            T.TEXT_LABELS)
            word = table[s.target.label] if para else s.target.label
            assert word in s.instruction.split()


def test_every_icon_draws_distinct_pixels() -> None:
    from PIL import Image, ImageDraw

    imgs = []
    for kind in T.ICONS:
        im = Image.new("RGB", (24, 24), (255, 255, 255))
        render.draw_icon(ImageDraw.Draw(im), kind, (0, 0, 24, 24), (0, 0, 0))
        imgs.append((np.asarray(im)[..., 0] < 128).astype(int))
    for i in range(len(imgs)):
        assert imgs[i].sum() > 10
        for j in range(i):
            assert np.abs(imgs[i] - imgs[j]).sum() > 15
    with pytest.raises(ValueError, match="unknown icon"):
        render.draw_icon(ImageDraw.Draw(Image.new("RGB", (8, 8))), "rocket", (0, 0, 8, 8), (0, 0, 0))
