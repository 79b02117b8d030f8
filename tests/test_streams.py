"""Random numbers keyed by (seed, trial, quantity, index): the generator and the invariants it buys."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from platform_sim.streams import (
    OUTCOMES,
    PATIENTS,
    RANDOMIZATION,
    Streams,
    TrialStreams,
    fill_row,
    philox4x32,
    quantity_id,
    uniform_at,
)

# Random123's known-answer vectors for Philox4x32-10 (counter, key, output), from its kat_vectors file
# (Salmon et al., SC11, 2011).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_philox_matches_the_published_known_answers(counter, key, expected):
    out = philox4x32(np.array(counter, dtype=np.uint32), np.array(key, dtype=np.uint32))
    assert tuple(int(x) for x in out) == expected


def test_a_value_depends_only_on_seed_family_quantity_trial_and_position():
    s = Streams(5)
    whole = s.uniform(PATIENTS, "marker:kras", np.arange(20), 0, 300)
    # any subset of trials, any range of positions, any order: the same values
    part = s.uniform(PATIENTS, "marker:kras", np.array([17, 3, 3]), 101, 57)
    np.testing.assert_array_equal(part, whole[[17, 3, 3], 101:158])
    odd = s.uniform(PATIENTS, "marker:kras", np.array([4]), 7, 1)
    assert odd[0, 0] == whole[4, 7]
    # a new Streams object with the same seed: the same values
    np.testing.assert_array_equal(Streams(5).uniform(PATIENTS, "marker:kras", np.arange(20), 0, 300), whole)
    # every other key part changes them
    for other in (
        Streams(6).uniform(PATIENTS, "marker:kras", np.arange(20), 0, 300),
        s.uniform(OUTCOMES, "marker:kras", np.arange(20), 0, 300),
        s.uniform(PATIENTS, "marker:stk11", np.arange(20), 0, 300),
        s.uniform(PATIENTS, "marker:kras", np.arange(20, 40), 0, 300),
    ):
        assert not np.isin(other, whole).any()


@pytest.mark.parametrize("n_trials", [3, 9])  # 9: few positions for many trials are filled trials-inside
@pytest.mark.parametrize("start, n", [(0, 1), (1, 1), (0, 40), (3, 38), (7, 2), (1000001, 5)])
def test_uniforms_are_the_documented_function_of_the_philox_block(start, n, n_trials):
    """The vectorized fill against the definition, value by value: position i of a quantity is the
    first (i even) or second (i odd) 53-bit half of Philox4x32-10 at counter (i // 2, quantity id,
    trial, family) under the seed's key."""
    s = Streams(11)
    k0, k1 = s.key
    trials = np.array([0, 5, 2**32 - 1, 1, 2, 3, 4, 6, 2**31])[:n_trials]
    got = s.uniform(OUTCOMES, "outcome:x", trials, start, n)
    qid = quantity_id("outcome:x")
    for r, t in enumerate(trials):
        for j in range(n):
            i = start + j
            w = [
                int(x)
                for x in philox4x32(
                    np.array([i // 2, qid, t, OUTCOMES], dtype=np.uint32), np.array([k0, k1], dtype=np.uint32)
                )
            ]
            hi, lo = (w[0], w[1]) if i % 2 == 0 else (w[2], w[3])
            m = ((hi << 21) ^ (lo >> 11)) & (2**53 - 1)
            assert got[r, j] == (m + 0.5) / 2**53


def test_uniforms_are_strictly_inside_the_unit_interval_and_uniform():
    u = Streams(1).uniform(RANDOMIZATION, "randomization:arm", np.arange(400), 0, 500).ravel()
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # consecutive positions (the two halves of one Philox block, and across blocks) are uncorrelated:
    # with m = 200,000 pairs the correlation's standard error is 1/sqrt(m)
    r = np.corrcoef(u[:-1], u[1:])[0, 1]
    assert abs(r) < 4 / np.sqrt(u.size - 1)
    # the same position of neighbouring trials too
    grid = Streams(1).uniform(RANDOMIZATION, "randomization:arm", np.arange(2000), 0, 100)
    r_trials = np.corrcoef(grid[:-1].ravel(), grid[1:].ravel())[0, 1]
    assert abs(r_trials) < 4 / np.sqrt(grid[:-1].size)


def test_quantity_ids_and_bad_arguments():
    assert quantity_id("marker:kras") == quantity_id("marker:kras") != quantity_id("marker:stk11")
    assert quantity_id(7) == 7
    with pytest.raises(ValueError, match="32-bit"):
        quantity_id(-1)
    with pytest.raises(ValueError, match="trial indices"):
        Streams(1).uniform(PATIENTS, "x", np.array([-1]), 0, 3)
    with pytest.raises(ValueError, match="non-negative"):
        Streams(1).uniform(PATIENTS, "x", np.array([0]), -1, 3)
    assert Streams(1).uniform(PATIENTS, "x", np.arange(3), 0, 0).shape == (3, 0)
    # a batch's trials are checked when its streams are made, and its draws' positions at each draw
    with pytest.raises(ValueError, match="trial indices"):
        Streams(1).for_trials([0, 2**32])
    with pytest.raises(ValueError, match="trial indices"):
        TrialStreams(Streams(1), np.array([3, -1]))
    ts = TrialStreams(Streams(1), [[4], [2]])  # made contiguous int64, flat
    assert ts.trials.dtype == np.int64 and ts.trials.shape == (2,)
    with pytest.raises(ValueError, match="non-negative"):
        ts.uniform(PATIENTS, "x", -2, 3)
    np.testing.assert_array_equal(ts.uniform(PATIENTS, "x", 0, 3, rows=1), Streams(1).uniform(PATIENTS, "x", [2], 0, 3))


def test_trial_streams_derive_exponential_and_normal_variates_from_the_same_uniforms():
    ts = Streams(3).for_trials(np.arange(2000))
    u = ts.uniform(PATIENTS, "arrival", 0, 50)
    np.testing.assert_allclose(ts.exponential(PATIENTS, "arrival", 0, 50), -np.log(u))
    z = ts.normal(PATIENTS, "arrival", 0, 50)
    np.testing.assert_allclose(stats.norm.cdf(z), u, rtol=1e-12)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    sub = ts.subset(np.array([5, 9]))
    np.testing.assert_array_equal(sub.uniform(PATIENTS, "arrival", 0, 50), u[[5, 9]])


def test_uniforms_written_into_a_given_array_are_the_same():
    """``out=`` fills a slice of a larger array with the same values; a wrong array is refused."""
    ts = Streams(31).for_trials(np.arange(3, 9))
    whole = np.zeros((2, 6, 70))
    returned = ts.uniform(PATIENTS, "marker:x", 5, 70, out=whole[1])
    assert np.shares_memory(returned, whole)
    np.testing.assert_array_equal(whole[1], ts.uniform(PATIENTS, "marker:x", 5, 70))
    assert (whole[0] == 0).all()
    with pytest.raises(ValueError, match="C-contiguous float64"):
        ts.uniform(PATIENTS, "marker:x", 5, 70, out=np.zeros((6, 71)))
    with pytest.raises(ValueError, match="C-contiguous float64"):
        ts.uniform(PATIENTS, "marker:x", 5, 70, out=np.zeros((70, 6)).T)


def test_a_single_position_is_the_value_the_fill_writes_there():
    """uniform_at (one Philox call, for compiled code that draws scattered positions) gives the value
    of the run of positions :meth:`Streams.uniform` fills, at even and odd positions, for trial
    indices up to 2**32 - 1; a different family, quantity, trial or position gives another value."""
    s = Streams(23)
    k0, k1 = (np.uint64(k) for k in s.key)
    trials = np.array([0, 7, 2**31, 2**32 - 1])
    for family, quantity in ((OUTCOMES, "outcome:dcr12:docetaxel"), (RANDOMIZATION, "randomization:arm")):
        qid = np.uint64(quantity_id(quantity))
        for start in (0, 1, 254, 1_000_001):
            run = s.uniform(family, quantity, trials, start, 5)
            for r, t in enumerate(trials):
                for j in range(5):
                    got = uniform_at(k0, k1, np.uint64(family), qid, np.uint64(t), np.uint64(start + j))
                    assert got == run[r, j]
    one = uniform_at(k0, k1, np.uint64(OUTCOMES), np.uint64(quantity_id("outcome:x")), np.uint64(3), np.uint64(10))
    for other in (
        uniform_at(k0, k1, np.uint64(PATIENTS), np.uint64(quantity_id("outcome:x")), np.uint64(3), np.uint64(10)),
        uniform_at(k0, k1, np.uint64(OUTCOMES), np.uint64(quantity_id("outcome:y")), np.uint64(3), np.uint64(10)),
        uniform_at(k0, k1, np.uint64(OUTCOMES), np.uint64(quantity_id("outcome:x")), np.uint64(4), np.uint64(10)),
        uniform_at(k0, k1, np.uint64(OUTCOMES), np.uint64(quantity_id("outcome:x")), np.uint64(3), np.uint64(11)),
    ):
        assert other != one


def test_one_trials_run_drawn_in_compiled_code_is_the_batchs_row():
    """fill_row (one trial's run of a quantity, for compiled code that uses each trial's uniforms as
    it draws them) writes the row :meth:`Streams.uniform` gives that trial, at even and odd starts,
    for lengths from 0 up, with a scratch of the row's length plus two; it writes nothing else."""
    s = Streams(41)
    k0, k1 = (np.uint64(k) for k in s.key)
    trials = np.array([0, 5, 2**31 + 3, 2**32 - 1])
    qid = np.uint64(quantity_id("assay_failure:tissue:kras"))
    for start in (0, 1, 255, 1_000_001):
        for n in (0, 1, 2, 7, 256):
            batch = s.uniform(PATIENTS, "assay_failure:tissue:kras", trials, start, n)
            for r, t in enumerate(trials):
                row = np.full(n + 1, -1.0)
                pairs = np.empty(n + 2)
                fill_row(row[:n], pairs, k0, k1, np.uint64(PATIENTS), qid, t, start)
                np.testing.assert_array_equal(row[:n], batch[r])
                assert row[n] == -1.0
