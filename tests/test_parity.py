import numpy as np

from zoo.core.manifest import resolve
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
    assert r.ok and r.summary()["tied_images"] == 1
    assert r.line().startswith("0 of 0 detections matched on 0 images; 1 tied-score image checked for shapes only")
    bad = {**other, "labels": other["labels"].astype(np.int32)}
    assert not compare([tied], [bad], Tolerance()).ok


def test_an_unranked_image_is_checked_like_a_tied_one_and_only_that_image():
    """A constant image ranks ties upstream (RPN top-k): the caller names it, and only its structure is checked."""
    dropped = {k: v[1:] for k, v in REF.items()}
    assert not compare([REF, REF], [REF, dropped], Tolerance()).ok
    r = compare([REF, REF], [REF, dropped], Tolerance(), unranked=frozenset({1}))
    assert r.ok and r.summary()["tied_images"] == 1
    n = len(REF["scores"])
    assert r.line().startswith(f"{n} of {n} detections matched on 1 image; 1 constant image checked for shapes only")
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
    assert any("mask diff" in f for f in r.failures) and any("keypoint distance 5px" in f for f in r.failures)


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


def masked_detections(h, w, rng, n=6):
    """Detections as a Mask R-CNN returns them on an HxW image: small boxes, each with an image-sized mask that is a
    smooth blob inside its box (probabilities near 1 at its centre, 0 outside the box)."""
    boxes, masks = [], np.zeros((n, 1, h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    for k in range(n):
        bw, bh = rng.integers(18, 60, 2)
        x0, y0 = rng.integers(0, w - bw), rng.integers(0, h - bh)
        boxes.append([x0, y0, x0 + bw, y0 + bh])
        d = ((xs - x0 - bw / 2) / (bw / 2)) ** 2 + ((ys - y0 - bh / 2) / (bh / 2)) ** 2
        inside = (xs >= x0) & (xs < x0 + bw) & (ys >= y0) & (ys < y0 + bh)
        masks[k, 0] = np.where(inside, np.clip(1.2 - d, 0, 1), 0)
    return {**dets(boxes, rng.integers(1, 5, n), np.linspace(0.9, 0.4, n)), "masks": masks}


def noise_inside_the_boxes(d, rng):
    """The same boxes, labels and scores; each mask replaced by uniform noise inside its box (an AOTInductor package
    of a trained Mask R-CNN returned such masks: mask mAP 0 against eager's 84.8)."""
    masks = np.zeros_like(d["masks"])
    for k, (x0, y0, x1, y1) in enumerate(d["boxes"].astype(int)):
        masks[k, 0, y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0))
    return {**d, "masks": masks}


def test_masks_that_are_noise_inside_exact_boxes_fail_at_every_parity_size():
    """Judged per mask inside its box: noise fails at each of the Mask R-CNN manifest's parity sizes, where the old
    whole-image mean difference stayed within mask_atol; the same masks with float noise pass."""
    rng = np.random.default_rng(0)
    m = resolve("maskrcnn_resnet50_fpn")
    old_figures = []
    for h, w in m.parity["sizes"] + m.parity["batch"]:
        ref = masked_detections(h, w, rng)
        noisy = noise_inside_the_boxes(ref, rng)
        r = compare([ref], [noisy], Tolerance())
        assert not r.ok and any("mask IoU at 0.5 inside the box" in f for f in r.failures), (h, w, r.failures)
        assert any("mask diff inside the box" in f for f in r.failures), r.failures
        assert r.summary()["min_mask_iou"] < 0.6
        old_figures.append(max(np.abs(a - b).mean() for a, b in zip(ref["masks"], noisy["masks"])))
        close = {**ref, "masks": ref["masks"] + rng.normal(0, 1e-3, ref["masks"].shape).astype(np.float32)}
        good = compare([ref], [close], Tolerance())
        assert good.ok, good.failures
        assert good.summary()["min_mask_iou"] > 0.97 and good.summary()["max_mask_diff"] < 0.002
    assert max(old_figures) < Tolerance().mask_atol  # what the old gate measured: it let all of these through


def test_mask_iou_bound_comes_from_the_tolerance_and_empty_masks_agree():
    rng = np.random.default_rng(1)
    ref = masked_detections(200, 300, rng, n=2)
    eroded = {**ref, "masks": np.where(ref["masks"] > 0.7, ref["masks"], 0).astype(np.float32)}  # a thinner mask
    r = compare([ref], [eroded], Tolerance(mask_atol=1.0))
    iou = r.summary()["min_mask_iou"]
    assert 0.3 < iou < 0.9 and not r.ok
    assert compare([ref], [eroded], Tolerance(mask_atol=1.0, mask_iou=iou - 0.01)).ok
    empty = {**ref, "masks": np.zeros_like(ref["masks"])}
    assert compare([empty], [empty], Tolerance()).summary()["min_mask_iou"] == 1.0


def test_keypoints_are_judged_per_visible_keypoint_by_distance():
    kps = np.ones((3, 17, 3), np.float32) * np.array([50, 50, 1], np.float32)
    ref = {**REF, "keypoints": kps}
    diagonal = kps.copy()
    diagonal[1, 4, :2] += 1.8  # 1.8 px in x and y: 2.55 px away (within 2 px per coordinate)
    r = compare([ref], [{**ref, "keypoints": diagonal}], Tolerance())
    assert not r.ok and any("keypoint distance 2.546px > 2.0" in f for f in r.failures), r.failures
    hidden = kps.copy()
    hidden[:, 3, 2] = 0  # not visible in the reference: where it lands does not matter
    moved = hidden.copy()
    moved[:, 3, :2] += 40
    assert compare([{**ref, "keypoints": hidden}], [{**ref, "keypoints": moved}], Tolerance()).ok
