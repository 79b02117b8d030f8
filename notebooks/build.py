"""Write the notebooks from their cell sources: ``python notebooks/build.py`` (then execute them with
``python notebooks/build.py --execute`` to store their outputs)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETTINGS = """import os

# Simulated trials per design x scenario. The test suite runs this notebook with a small number
# (PLATFORM_SIM_NOTEBOOK_SIMS); use 2,000 or more for decisions.
N_SIMS = int(os.environ.get("PLATFORM_SIM_NOTEBOOK_SIMS", "{default}"))
SEED = 1"""


def quickstart():
    return [
        new_markdown_cell(
            "# Quick start: one design, one scenario\n\n"
            "Simulate the shipped PIONeeR-like response-adaptive design (`pioneer_rar`) on the scenario where one "
            "durvalumab combination works (`pioneer_alternative`), read its operating characteristics with their "
            "Monte Carlo standard errors (MCSE), plot them and write the report, all with the Python interface "
            "(`import platform_sim as ps`; see `docs/api.md`)."
        ),
        new_code_cell(SETTINGS.format(default=2000)),
        new_code_cell(
            "%matplotlib inline\n"
            "import matplotlib.pyplot as plt\n"
            "\n"
            "import platform_sim as ps\n"
            "from platform_sim import plot\n\n"
            'design = ps.load_design("pioneer_rar")\n'
            'scenario = ps.load_scenario("pioneer_alternative")\n'
            "print(design.description)\n"
            "print(scenario.description)"
        ),
        new_markdown_cell(
            "Run the simulated trials. The same seed always gives the same numbers, whatever the "
            "number of worker processes (`workers=`); `progress=True` shows a progress bar."
        ),
        new_code_cell(
            "res = ps.run(design, scenario, n_sims=N_SIMS, seed=SEED)\n"
            'print(f"{res.n_sims} trials in {res.elapsed_seconds:.1f} s ({res.n_sims / res.elapsed_seconds:,.0f} "\n'
            '      "trials/s)")\n'
            "res"
        ),
        new_markdown_cell(
            "The truth of the scenario, exactly: each arm's true disease-control rate, its effect "
            "against the control (a rate difference) and its role: it *works* when the effect reaches "
            "the clinically relevant difference, it is *null* when it is no better than the control, "
            "and in the *grey zone* in between."
        ),
        new_code_cell("res.truth.frame()"),
        new_markdown_cell(
            "## The operating characteristics\n\n"
            "`res.oc()` is one tidy table: one row per level (trial, arm, arm x subgroup), arm, "
            "subgroup and metric, each value with its Monte Carlo standard error (`mcse`), a 95% "
            "interval (`lower`, `upper`; Jeffreys for proportions) and the number of trials it counts. "
            "The command line writes the same table to `oc.csv`."
        ),
        new_code_cell("res.oc().head()"),
        new_markdown_cell("## The trial-level table"),
        new_code_cell(
            'res.summary().loc[["power", "fwer", "p_any_claim", "p_correct_finding", "p_stopped_early",\n'
            '                   "mean_n_randomized", "n_screened", "duration_months"]]'
        ),
        new_markdown_cell(
            "## The arm-level table\n\n"
            "One row per arm: the truth among all patients, then each metric with its MCSE (`*_mcse`) "
            "and 95% interval. `p_claimed`: the arm was declared effective (here: superior to "
            "docetaxel)."
        ),
        new_code_cell(
            'res.arm_table()[["true_value", "true_effect", "role", "p_claimed", "p_claimed_lower",\n'
            '                 "p_claimed_upper", "p_dropped", "mean_n", "mean_n_mcse", "alloc_share"]]'
        ),
        new_markdown_cell(
            "## Operating characteristics in pictures\n\n"
            "`platform_sim.plot` draws the report's figures one by one; those with one panel take "
            "`ax=`. Left: how often each experimental arm is declared superior to docetaxel (power for "
            "the arm that works, false-positive rate for the null one), with 95% intervals. Right: "
            "where the patients go."
        ),
        new_code_cell(
            'fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")\n'
            'plot.arm_metric(res, "p_claimed", ax=left)\n'
            'plot.arm_metric(res, "mean_n", ax=right)\n'
            "plt.show()"
        ),
        new_markdown_cell(
            "Sample size and calendar duration vary from trial to trial because the design stops "
            "early when an arm is superior or all comparators are dropped."
        ),
        new_code_cell(
            'fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5), layout="constrained")\n'
            "plot.sample_size(res, ax=a)\n"
            "plot.duration(res, ax=b)\n"
            "plt.show()"
        ),
        new_markdown_cell(
            "How allocation moves after each look, and whether the estimates have settled: a band "
            "still wide at the right calls for more simulated trials."
        ),
        new_code_cell("plot.allocation(res)"),
        new_code_cell('plot.convergence(res, ["power", "fwer", "n_randomized", "duration_months"])'),
        new_markdown_cell(
            "## Every simulated trial\n\n"
            "`res.to_xarray()` holds every per-trial array with named dimensions (`trial`, `arm`, "
            "`stratum`, `subgroup`, `look`), so questions the tables do not answer are one line: here, "
            "the mean allocation probability of each arm after each look, and the mean patients per "
            "arm."
        ),
        new_code_cell('ds = res.to_xarray()\nds["alloc_history"].mean("trial").to_pandas().round(3)'),
        new_code_cell('ds["n"].sum("stratum").mean("trial").to_pandas()'),
        new_markdown_cell(
            "## The HTML report\n\n"
            "`res.report(path)` writes the tables, more figures and the design in words into one "
            "self-contained page that opens offline in any browser; `res.save(dir)` writes the run "
            "directory the command line writes. From the terminal, the same run and report:\n\n"
            "`platform-sim run --design pioneer_rar --scenario pioneer_alternative --out DIR --report`"
        ),
        new_code_cell(
            "import tempfile\n"
            "from pathlib import Path\n\n"
            'out = Path(tempfile.mkdtemp()) / "pioneer_rar"\n'
            'print(res.report(out / "report.html").name)\n'
            "res.save(out)\n"
            "print(sorted(p.name for p in out.iterdir()))"
        ),
        new_markdown_cell(
            "The run directory reads back into the same results and spec, so the numbers above can be "
            "recomputed from it at any time, and `platform-sim report DIR` rebuilds its page:"
        ),
        new_code_cell(
            "from platform_sim.rundir import load_run\n\n"
            "saved = load_run(out)\n"
            "assert (saved.results.n == res.trials.n).all()  # the same trials\n"
            'saved.manifest["spec_hash"], saved.manifest["design"]["file"]'
        ),
    ]


def allcomer_vs_biomarker():
    return [
        new_markdown_cell(
            "# All-comer versus biomarker-selected designs\n\n"
            "The central question of platform trials in ICI-resistant NSCLC: should every patient be randomized "
            "between all arms (all-comer), or should biomarker results route patients to arms and decisions be made "
            "per biomarker stratum (Lung-MAP-like umbrella, BATTLE-like stratified adaptive randomization, "
            "adaptive enrichment)?\n\n"
            "A fair answer needs three things, and `compare` does all three:\n\n"
            "1. **One error rate.** Each design's decision threshold is first calibrated on the global null so "
            "that every design makes a false claim in the same share of trials; power is then compared at equal "
            "FWER, not between a loose and a strict design.\n"
            '2. **One size.** With `equal="max_n"` every design is resized to the reference design\'s '
            "maximum sample size.\n"
            "3. **One yardstick.** Claims are read per treatment and per subgroup of *true* biomarkers: a claim "
            "for all comers counts in every subgroup, true where the drug works there and false where it does "
            "not; a claim in a stratum counts in every subgroup it reaches.\n\n"
            "Every design sees the same virtual patients (common random numbers), so differences are paired."
        ),
        new_code_cell(SETTINGS.format(default=300)),
        new_code_cell(
            "import platform_sim as ps\n\n"
            'suite = ps.load_suite("core")\n'
            "TARGET_FWER = 0.10  # one-sided screening-trial error (Rubinstein et al., J Clin Oncol 2005;23:7199)\n"
            'print(" ".join(suite.description.split()))\n'
            'print("\\ndesigns:", ", ".join(suite.designs))'
        ),
        new_code_cell(
            "import time\n\n"
            "start = time.perf_counter()\n"
            "result = ps.compare(suite.designs, suite.scenarios, N_SIMS, SEED, null_scenario=suite.null_scenario,\n"
            '                    target_fwer=TARGET_FWER, equal="max_n")\n'
            'print(f"{len(suite.designs)} designs x {len(suite.scenarios)} scenarios x {N_SIMS} trials, calibrated "\n'
            '      f"and sized, in {time.perf_counter() - start:.0f} s")'
        ),
        new_markdown_cell(
            "## Step 1: every design at one error rate\n\n"
            "The threshold each design needs to make a false claim in at most 10% of null trials, found by a "
            "deterministic search with common random numbers, and the FWER it had at its shipped threshold."
        ),
        new_code_cell(
            'result.calibration[["design", "parameter", "design_values", "calibrated_values", "fwer",\n'
            '                    "fwer_mcse", "design_fwer", "design_fwer_mcse"]].round(4)'
        ),
        new_code_cell("result.sizing  # every design resized to the reference design's maximum sample size"),
        new_markdown_cell(
            "## Step 2: power against FWER\n\n"
            "Each line is one design at its calibrated threshold (star) and at thresholds moved around it. A "
            "design whose line lies above another's finds more at *every* error rate, so the ranking does not "
            "hang on the 10% chosen."
        ),
        new_code_cell('%matplotlib inline\nresult.plot("frontier")'),
        new_markdown_cell(
            "## Step 3: paired differences from the all-comer design\n\n"
            "Every point is another design's value minus `allcomer_fixed`'s on the same simulated trials, with a "
            "95% interval (Newcombe's interval for paired proportions). An interval that does not cross 0 is a "
            "clear difference."
        ),
        new_code_cell('result.plot("paired")'),
        new_markdown_cell(
            "## Step 4: who is found where\n\n"
            "On `stk11_keap1_only` durvalumab + tremelimumab works only in STK11/KEAP1-mutant patients. Outlined "
            "cells are where the drug works (the rate is power); hatched cells where it is null (the rate is a "
            "false-positive rate). An all-comer claim lights up both rows."
        ),
        new_code_cell('result.plot("claims", scenario="stk11_keap1_only")'),
        new_code_cell('result.plot("claims", scenario="qualitative_interaction")'),
        new_markdown_cell(
            "## Step 5: the answer, computed\n\n"
            "`result.winners()` names the best design per scenario and metric, with the paired difference from the "
            "runner-up and whether its 95% interval excludes 0. The recommendation below is computed from it, "
            "not written by hand: rerun with other designs, scenarios or `N_SIMS` and it follows."
        ),
        new_code_cell(
            "w = result.winners()\n"
            'w[w.metric.isin(["power", "fwer", "n_screened", "cost"])].pivot(\n'
            '    index="scenario", columns="metric", values="best").reindex(suite.scenarios)'
        ),
        new_code_cell(
            "def recommendation(w, scenarios, null):\n"
            '    """One line per scenario: the design with clearly the highest power, or that none is clearly ahead."""\n'
            "    lines = []\n"
            "    for s in scenarios:\n"
            "        if s == null:\n"
            "            continue\n"
            '        row = w[(w.scenario == s) & (w.metric == "power")]\n'
            "        if row.empty:\n"
            "            continue\n"
            "        r = row.iloc[0]\n"
            "        if r.clear:\n"
            "            lines.append(f\"{s}: {r.best} (power {r.value:.2f}; {r['diff']:+.2f} over {r.runner_up}, \"\n"
            '                         f"95% interval {r.diff_lower:+.2f} to {r.diff_upper:+.2f})")\n'
            "        else:\n"
            '            lines.append(f"{s}: no design clearly ahead ({r.best} {r.value:.2f} vs {r.runner_up} "\n'
            '                         f"{r.runner_up_value:.2f}; interval {r.diff_lower:+.2f} to {r.diff_upper:+.2f})")\n'
            '    wins = w[(w.metric == "power") & w.clear].best.value_counts()\n'
            '    overall = (f"Overall: {wins.index[0]} is clearly the most powerful in {wins.iloc[0]} of "\n'
            '               f"{len([s for s in scenarios if s != null])} scenarios at FWER {TARGET_FWER}."\n'
            '               if len(wins) else "Overall: no design is clearly the most powerful in any scenario.")\n'
            '    return "\\n".join(lines + [overall])\n\n\n'
            "print(recommendation(w, suite.scenarios, suite.null_scenario))"
        ),
        new_markdown_cell(
            "## Reading the answer\n\n"
            "- The comparison is at one error rate and one maximum sample size, so a design that wins on power "
            "wins because of its structure, not because it is looser or larger. The frontier shows whether the "
            "ranking holds at other error rates.\n"
            "- Where a drug works only in a biomarker group, a design that tests it inside that group sees the "
            "full effect, while an all-comer design sees it diluted by the patients it does not help; the claims "
            "heatmaps show where each design's claims land, and a pooled claim on `qualitative_interaction` is "
            "counted false in the marker-negative patients it would harm.\n"
            "- Where a drug works in everyone, confining it to a biomarker group loses patients and time; look at "
            "`allcomer_effect` in the paired-difference plot, and at screening and cost, which selection always "
            "pays.\n"
            '- Intervals are Monte Carlo intervals for this many simulated trials: a design that is "not '
            'clearly" ahead may simply need more. For a decision, run 2,000 trials or more per design and '
            "scenario (a few minutes on two cores)."
        ),
        new_markdown_cell(
            "## The same from the command line\n\n"
            "```\n"
            "platform-sim compare --designs suite:core --scenarios suite:core --null-scenario pioneer_null \\\n"
            "    --target-fwer 0.10 --equal max_n --n-sims 2000 --out runs/core\n"
            "platform-sim report runs/core\n"
            "```\n\n"
            "writes every table here as CSV and a decision report that opens with this answer."
        ),
    ]


def single_trial_bayes():
    return [
        new_markdown_cell(
            "# One simulated trial, then its Bayesian analysis\n\n"
            "Operating characteristics average over thousands of simulated trials. To trust a design, follow one of "
            "them: replay trial 3 of the seed-1 run of the PIONeeR-like platform (`pioneer_platform`, progression-free "
            "survival, arms entering over calendar time) on `pioneer_alternative`, look at every interim analysis, "
            "then fit a Bayesian survival model with treatment x biomarker interactions to its patients in PyMC and "
            "check the sampler with ArviZ."
        ),
        new_code_cell(
            "import os\n\n"
            "# NUTS draws per chain; the test suite runs this notebook with a small number.\n"
            'DRAWS = int(os.environ.get("PLATFORM_SIM_NOTEBOOK_DRAWS", "1000"))\n'
            "SEED, INDEX, N_SIMS = 1, 3, 2000"
        ),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "\n"
            "from platform_sim.spec import Spec\n"
            "from platform_sim.storyboard import format_story, history_figure, replay\n\n"
            'spec = Spec.load("pioneer_platform", "pioneer_alternative")\n'
            "story = replay(spec, SEED, INDEX, N_SIMS)\n"
            "story.summary"
        ),
        new_markdown_cell(
            "The replay is exactly trial 3 of `platform-sim run --design pioneer_platform --seed 1 "
            "--n-sims 2000`: the same patients, randomization and decisions. Its record:"
        ),
        new_code_cell("from platform_sim.storyboard import record_frame\n\nrecord_frame(story).T.head(30)"),
        new_markdown_cell(
            "## The interim analyses\n\nPer arm, the patients and progressions seen and the graduation "
            "statistic (the predictive probability of a successful phase 3) in each signature:"
        ),
        new_code_cell("print(format_story(story)[:6000])"),
        new_code_cell("fig = history_figure(story)\nplt.show()"),
        new_markdown_cell(
            "The tidy per-analysis table holds every arm x stratum with the posterior median PFS "
            "and its 95% credible interval:"
        ),
        new_code_cell('story.analyses.query("analysis == 4").head(12)'),
        new_markdown_cell(
            "## Patient-level data\n\nOne row per screened patient: arrival, true and reported "
            "biomarkers, screening result, arm, PFS, dropout and the tumour assessments."
        ),
        new_code_cell(
            'cols = ["patient", "arrival_months", "screening", "atm", "reported_atm", "stk11_or_keap1",\n'
            '        "stratum", "arm", "pfs_months", "assessments", "progression_seen_months", "time", "event"]\n'
            "story.patients[cols].head(10)"
        ),
        new_markdown_cell(
            "## The final Bayesian analysis in PyMC\n\n"
            "An exponential proportional-hazards model with treatment, biomarker-group and treatment x group terms; "
            "the interactions share a hierarchical normal prior, so small groups borrow from the others "
            "(see `docs/final_analysis.md`)."
        ),
        new_code_cell(
            "from platform_sim.bayes.final_analysis import fit_final_analysis, forest_plot, save_netcdf\n\n"
            "data = story.analysis_data()\n"
            'arms = [a for a in spec.design.arm_names if (data["arm"] == a).any()]\n'
            'groups = sorted(data["group"].unique())\n'
            "analysis = fit_final_analysis(data, arms=arms, groups=groups, control=spec.design.control,\n"
            '                              endpoint="survival", draws=DRAWS, tune=DRAWS, chains=2, seed=1)\n'
            "analysis.warnings"
        ),
        new_markdown_cell("ArviZ summary: posterior means, credible intervals, r_hat and effective sample sizes."),
        new_code_cell("analysis.summary.head(15)"),
        new_code_cell('analysis.effects[["arm", "group", "n", "events", "mean", "lower", "upper", "prob_benefit"]]'),
        new_code_cell("fig = forest_plot(analysis)\nplt.show()"),
        new_markdown_cell("## Sampler diagnostics"),
        new_code_cell(
            "import arviz as az\n\n"
            'print(f"divergences: {analysis.divergences}, max r_hat: {analysis.max_r_hat:.3f}, "\n'
            '      f"min bulk ESS: {analysis.min_ess_bulk:.0f}")\n'
            'az.plot_trace(analysis.idata, var_names=["tau"], compact=True)\n'
            "plt.tight_layout()\n"
            "plt.show()"
        ),
        new_markdown_cell("The InferenceData can be saved to NetCDF and read back for further work."),
        new_code_cell(
            "import tempfile\n"
            "from pathlib import Path\n\n"
            'path = save_netcdf(analysis, Path(tempfile.mkdtemp()) / "posterior.nc")\n'
            "az.from_netcdf(path)"
        ),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_allcomer_vs_biomarker.ipynb": allcomer_vs_biomarker,
    "03_single_trial_bayes.ipynb": single_trial_bayes,
}


def write(names=None) -> list[Path]:
    paths = []
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = new_notebook(
            cells=cells(),
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        path = HERE / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def execute(path: Path, timeout: int = 600) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)


if __name__ == "__main__":
    written = write([a for a in sys.argv[1:] if a.endswith(".ipynb")] or None)
    if "--execute" in sys.argv:
        for p in written:
            execute(p)
    print("\n".join(str(p) for p in written))
