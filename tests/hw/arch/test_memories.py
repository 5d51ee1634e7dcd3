"""The segment-aware image names and the images each memory holds while a segment runs."""

from hw.arch.config import PRESETS
from hw.arch.memories import (SEGMENT_MEMORIES, preloaded_memories, ptr_reload_segments,
                              segment_images, segment_key, segment_stem)


def test_segment_names():
    assert segment_stem("ptr_even", 0) == "ptr_even"
    assert segment_stem("ptr_even", 2) == "ptr_even.seg2"
    assert segment_key("spmat", 0) == "spmat" and segment_key("ptr_odd", 1) == "ptr_odd_seg1"


def test_segment_images_follow_the_pointer_image():
    """Segment 1 reloads only the Spmat SRAM (its pointers are segment 0's), segment 2 both."""
    layers = [dict(segment=0, ptr_segment=0), dict(segment=1, ptr_segment=0),
              dict(segment=2, ptr_segment=2), dict(segment=2, ptr_segment=2)]
    assert segment_images(layers, 1) == {"spmat": 1, "ptr_even": 0, "ptr_odd": 0}
    assert segment_images(layers, 2) == {"spmat": 2, "ptr_even": 2, "ptr_odd": 2}
    assert ptr_reload_segments(layers) == [2]
    assert ptr_reload_segments([dict(segment=0)]) == []  # manifests without ptr_segment


def test_segment_memories_are_preloaded():
    names = {m.name for m in preloaded_memories(PRESETS["tiny"])}
    assert set(SEGMENT_MEMORIES) <= names
