import numpy as np

from zoo.core.parity import Tolerance, box_iou, compare, match


def dets(boxes, labels, scores):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "labels": np.array(labels, np.int64),
            "scores": np.array(scores, np.float32)}


REF = dets([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 90, 80]], [1, 2, 3], [0.9, 0.8, 0.3])


def test_identical_and_reordered_match_fully():
    assert compare([REF], [REF], Tolerance()).ok
    order = [2, 0, 1]
    shuffled = {k: v[order] for k, v in REF.items()}
    r = compare([REF], [shuffled], Tolerance())
    assert r.ok and r.matched_fraction == 1.0 and r.summary()["max_box_diff"] == 0


def test_label_change_or_box_shift_fails_with_figures():
    wrong_label = {**REF, "labels": np.array([7, 2, 3])}
    r = compare([REF], [wrong_label], Tolerance())
    assert not r.ok and "matched 0.667" in r.failures[0]
    shifted = {**REF, "boxes": REF["boxes"] + np.array([3, 0, 3, 0], np.float32)}
    r = compare([REF], [shifted], Tolerance(iou=0.5))
    assert not r.ok and any("box diff 3px > 1.0" in f for f in r.failures)


def test_score_difference_is_reported():
    r = compare([REF], [{**REF, "scores": REF["scores"] + np.float32(0.05)}], Tolerance())
    assert not r.ok and any("score diff" in f for f in r.failures)


def test_borderline_swap_at_cutoff_is_allowed_and_reported():
    # the reference keeps detections whose scores sit at the cut-off; the candidate swapped them for others
    ref = dets([[0, 0, 10, 10], [20, 20, 40, 40], [60, 60, 70, 70]], [1, 1, 1], [0.9, 0.3, 0.3])
    cand = dets([[0, 0, 10, 10], [120, 20, 140, 40], [80, 80, 95, 95]], [1, 1, 1], [0.9, 0.3, 0.3])
    r = compare([ref], [cand], Tolerance(max_borderline=1.0))
    assert r.ok and r.summary()["borderline"] == 2
    r = compare([ref], [cand], Tolerance(max_borderline=0.0))  # at least one swap is always allowed, two are not
    assert not r.ok and "2 borderline misses" in r.failures[0]
    high = dets([[0, 0, 10, 10], [20, 20, 40, 40], [60, 60, 70, 70]], [1, 1, 1], [0.9, 0.8, 0.3])
    moved = dets([[50, 0, 60, 10], [20, 20, 40, 40], [60, 60, 70, 70]], [1, 1, 1], [0.9, 0.8, 0.3])
    assert not compare([high], [moved], Tolerance(max_borderline=1.0)).ok  # a miss far above the cut-off is no swap


def test_tied_reference_is_reported_not_matched_but_shapes_still_checked():
    n = 20
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1)) + np.arange(n, dtype=np.float32)[:, None] * 12
    tied = dets(boxes, [1] * n, [0.5] * n)
    other = dets(boxes[::-1] + 3, [1] * n, [0.5] * n)
    r = compare([tied], [other], Tolerance())
    assert r.ok and r.summary()["tied_images"] == 1 and "tied scores" in r.line()
    bad = {**other, "labels": other["labels"].astype(np.int32)}
    assert not compare([tied], [bad], Tolerance()).ok


def test_an_unranked_image_is_checked_like_a_tied_one_and_only_that_image():
    """A constant image ranks ties upstream (RPN top-k): the caller names it, and only its structure is checked."""
    dropped = {k: v[1:] for k, v in REF.items()}
    assert not compare([REF, REF], [REF, dropped], Tolerance()).ok
    r = compare([REF, REF], [REF, dropped], Tolerance(), unranked=frozenset({1}))
    assert r.ok and r.summary()["tied_images"] == 1 and "constant input" in r.line()
    assert not compare([REF, REF], [dropped, dropped], Tolerance(), unranked=frozenset({1})).ok
    bad = {**dropped, "scores": dropped["scores"].astype(np.float64)}
    assert not compare([REF, REF], [REF, bad], Tolerance(), unranked=frozenset({1})).ok


def test_empty_outputs_match_and_count_mismatch_fails():
    empty = dets([], [], [])
    assert compare([empty], [empty], Tolerance()).ok
    assert not compare([REF], [empty], Tolerance()).ok
    assert not compare([REF, REF], [REF], Tolerance()).ok


def test_masks_and_keypoints_differences():
    masks = np.zeros((3, 1, 100, 100), np.float32)
    kps = np.ones((3, 17, 3), np.float32)
    ref = {**REF, "masks": masks, "keypoints": kps}
    cand = {**REF, "masks": masks + 0.2, "keypoints": kps + np.array([5, 0, 0], np.float32)}
    r = compare([ref], [cand], Tolerance())
    assert any("mask diff" in f for f in r.failures) and any("keypoint diff 5px" in f for f in r.failures)


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 10, 10]], float), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float))
    assert np.allclose(iou, [[1.0, 1 / 3, 0.0]])


def test_missing_output_is_a_failure_not_a_crash():
    masks = np.zeros((3, 1, 20, 20), np.float32)
    r = compare([{**REF, "masks": masks}], [REF], Tolerance())
    assert not r.ok and "outputs masks are missing" in r.failures[0]


def test_zero_area_and_tiny_boxes_match_by_coordinates_within_box_atol():
    # a point and a box clipped flat at the border have no IoU at all; a 2x2 box 0.5 px off has IoU ~0.6
    ref = dets([[5, 7, 5, 7], [0, 479, 40, 479], [100, 100, 102, 102]], [1, 1, 2], [0.9, 0.8, 0.7])
    near = dets([[5.2, 7, 5.2, 7.1], [0, 479, 40.3, 479], [100.5, 100.5, 102.5, 102.5]], [1, 1, 2], [0.9, 0.8, 0.7])
    assert box_iou(ref["boxes"], near["boxes"]).diagonal().max() < 0.9
    r = compare([ref], [near], Tolerance())
    assert r.ok and r.matched_fraction == 1.0 and r.summary()["max_box_diff"] == 0.5
    far = dets([[7, 7, 7, 7], [0, 479, 40, 479], [100, 100, 102, 102]], [1, 1, 3], [0.9, 0.8, 0.7])
    r = compare([ref], [far], Tolerance())  # 2 px away, or another label: no match
    assert not r.ok and r.images[0].matched == 1


def test_the_nearest_of_several_fitting_boxes_is_taken():
    ref = dets([[0, 0, 0, 0], [0.9, 0, 0.9, 0]], [1, 1], [0.9, 0.8])
    cand = dets([[0.8, 0, 0.8, 0], [0.1, 0, 0.1, 0]], [1, 1], [0.9, 0.8])
    pairs, p = match(ref, cand, Tolerance())
    assert sorted(pairs) == [(0, 1), (1, 0)] and p.max_box_diff < 0.11
