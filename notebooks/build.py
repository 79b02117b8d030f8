"""Write the notebooks from their cell sources: ``python notebooks/build.py`` (then execute them with
``python notebooks/build.py --execute`` to store their outputs)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETTINGS = '''import os

# Simulated trials per design x scenario. The test suite runs this notebook with a small number
# (PLATFORM_SIM_NOTEBOOK_SIMS); use 2,000 or more for decisions.
N_SIMS = int(os.environ.get("PLATFORM_SIM_NOTEBOOK_SIMS", "{default}"))
SEED = 1'''


def quickstart():
    return [
        new_markdown_cell(
            "# Quick start: one design, one scenario\n\n"
            "Simulate the shipped PIONeeR-like response-adaptive design (`pioneer_rar`) on the scenario where one "
            "durvalumab combination works (`pioneer_alternative`), read its operating characteristics with their "
            "Monte Carlo standard errors (MCSE), and plot them."),
        new_code_cell(SETTINGS.format(default=2000)),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "import numpy as np\n"
            "\n"
            "from platform_sim import oc\n"
            "from platform_sim.runner import run\n"
            "from platform_sim.spec import Spec\n\n"
            "spec = Spec.load(\"pioneer_rar\", \"pioneer_alternative\")\n"
            "print(spec.design.description)\n"
            "print(spec.scenario.description)"),
        new_markdown_cell("The truth of the scenario, exactly: each arm's true disease-control rate, its effect "
                          "against the control (a rate difference) and its role: it *works* when the effect reaches "
                          "the clinically relevant difference, it is *null* when it is no better than the control, "
                          "and in the *grey zone* in between."),
        new_code_cell("spec.truth.frame()"),
        new_markdown_cell("Run the simulated trials. The same seed always gives the same numbers, whatever the "
                          "number of worker processes."),
        new_code_cell(
            "import time\n\n"
            "start = time.perf_counter()\n"
            "results = run(spec, N_SIMS, SEED)\n"
            "elapsed = time.perf_counter() - start\n"
            "print(f\"{N_SIMS} trials in {elapsed:.1f} s ({N_SIMS / elapsed:,.0f} trials/s)\")"),
        new_markdown_cell("## The operating characteristics\n\n"
                          "`oc.frame` turns the trials into one tidy table: one row per level (trial, arm, arm x "
                          "subgroup), arm, subgroup and metric, each value with its Monte Carlo standard error "
                          "(`mcse`), a 95% interval and the number of trials it counts. The command line writes the "
                          "same table to `oc.csv`."),
        new_code_cell(
            "table = oc.frame(oc.summarize(results, spec.truth))\n"
            "table.head()"),
        new_markdown_cell("## The trial-level table"),
        new_code_cell(
            "trial = oc.trial_table(table)\n"
            "trial.loc[[\"power\", \"fwer\", \"p_any_claim\", \"p_correct_finding\", \"p_stopped_early\",\n"
            "           \"mean_n_randomized\", \"n_screened\", \"duration_months\"]]"),
        new_markdown_cell("## The arm-level table\n\n"
                          "One row per arm: the truth among all patients, then each metric with its MCSE (`*_mcse`). "
                          "`p_claimed`: the arm was declared effective (here: superior to docetaxel)."),
        new_code_cell(
            "arms = oc.arm_table(table, spec.truth)\n"
            "arms[[\"true_value\", \"true_effect\", \"role\", \"p_claimed\", \"p_claimed_mcse\", \"p_dropped\",\n"
            "      \"p_dropped_mcse\", \"mean_n\", \"mean_n_mcse\", \"alloc_share\"]]"),
        new_markdown_cell("## Operating characteristics in pictures\n\n"
                          "Left: how often each experimental arm is declared superior to docetaxel (power for the arm "
                          "that works, false-positive rate for the null one), with 95% Monte Carlo intervals. Right: "
                          "where the patients go — mean patients per arm."),
        new_code_cell(
            "fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)\n"
            "colours = [\"tab:green\" if role == \"works\" else \"tab:grey\" for role in arms[\"role\"]]\n"
            "y = np.arange(len(arms))\n"
            "left.barh(y, arms[\"p_claimed\"], xerr=1.96 * arms[\"p_claimed_mcse\"], color=colours, capsize=3)\n"
            "left.set_yticks(y, arms.index)\n"
            "left.set_xlabel(\"P(declared superior to control)\")\n"
            "left.set_title(\"green: the arm that works\")\n"
            "right.barh(y, arms[\"mean_n\"], xerr=1.96 * arms[\"mean_n_mcse\"], color=colours, capsize=3)\n"
            "right.set_yticks(y, [])\n"
            "right.set_xlabel(\"mean patients randomized\")\n"
            "for ax in (left, right):\n"
            "    ax.invert_yaxis()\n"
            "plt.show()"),
        new_markdown_cell("Sample size and calendar duration vary from trial to trial because the design stops "
                          "early when an arm is superior or all comparators are dropped."),
        new_code_cell(
            "fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5), constrained_layout=True)\n"
            "a.hist(results.n_randomized, bins=20, color=\"tab:blue\")\n"
            "a.set_xlabel(\"patients randomized\")\n"
            "a.set_ylabel(\"simulated trials\")\n"
            "b.hist(results.duration_months, bins=30, color=\"tab:orange\")\n"
            "b.set_xlabel(\"months from opening to the last assessment\")\n"
            "plt.show()"),
        new_markdown_cell("## The HTML report\n\n"
                          "The command line writes the same tables, more figures and the design in words into one "
                          "self-contained `DIR/report.html` (it opens offline in any browser):\n\n"
                          "`platform-sim run --design pioneer_rar --scenario pioneer_alternative --out DIR --report`"),
        new_code_cell(
            "import subprocess\n"
            "import sys\n"
            "import tempfile\n"
            "from pathlib import Path\n\n"
            "out = Path(tempfile.mkdtemp()) / \"pioneer_rar\"\n"
            "command = [sys.executable, \"-m\", \"platform_sim.cli\", \"run\", \"--design\", \"pioneer_rar\",\n"
            "           \"--scenario\", \"pioneer_alternative\", \"--n-sims\", str(N_SIMS), \"--seed\", str(SEED),\n"
            "           \"--out\", str(out), \"--report\", \"--quiet\"]\n"
            "done = subprocess.run(command, capture_output=True, text=True, check=True)\n"
            "print(done.stdout.splitlines()[-1])\n"
            "print(sorted(p.name for p in out.iterdir()))"),
        new_markdown_cell("The run directory reads back into the same results and spec, so the numbers above can be "
                          "recomputed from it at any time:"),
        new_code_cell(
            "from platform_sim.rundir import load_run\n\n"
            "saved = load_run(out)\n"
            "assert (saved.results.n == results.n).all()  # the same seed gives the same trials\n"
            "saved.manifest[\"spec_hash\"], saved.manifest[\"command\"]"),
    ]


def allcomer_vs_biomarker():
    return [
        new_markdown_cell(
            "# All-comer versus biomarker-selected designs\n\n"
            "The central question of platform trials in ICI-resistant NSCLC: should every patient be randomized "
            "between all arms (all-comer), or should biomarker results route patients to arms and decisions be made "
            "per biomarker stratum (Lung-MAP-like umbrella, BATTLE-like stratified adaptive randomization, "
            "hierarchical borrowing across strata, adaptive enrichment)?\n\n"
            "Six design families run on six scenarios with **common random numbers**: every design sees the same "
            "virtual patients, so differences between designs are paired and their standard errors small."),
        new_code_cell(SETTINGS.format(default=300)),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "import numpy as np\n"
            "\n"
            "from platform_sim.compare import compare\n"
            "from platform_sim.spec import Spec\n\n"
            "DESIGNS = [\"allcomer_fixed\", \"allcomer_rar\", \"lungmap_umbrella\", \"battle_stratified_rar\",\n"
            "           \"hierarchical_borrowing\", \"adaptive_enrichment\"]\n"
            "SCENARIOS = [\"pioneer_null\", \"pioneer_alternative\", \"atm_ceralasertib\", \"stk11_keap1_ctla4\",\n"
            "             \"trop2_adc\", \"qualitative_interaction\"]\n"
            "for name in SCENARIOS:\n"
            "    print(f\"{name}: {' '.join(Spec.load(DESIGNS[0], name).scenario.description.split())[:160]}...\")"),
        new_code_cell(
            "import time\n\n"
            "start = time.perf_counter()\n"
            "result = compare(DESIGNS, SCENARIOS, N_SIMS, SEED)\n"
            "table = result.table\n"
            "print(f\"{len(DESIGNS)} designs x {len(SCENARIOS)} scenarios x {N_SIMS} trials in \"\n"
            "      f\"{time.perf_counter() - start:.0f} s\")"),
        new_markdown_cell("## Power and false positives\n\n"
                          "`result.table` is tidy: one row per design x scenario x level (trial, arm, arm x subgroup) "
                          "x metric, with the MCSE and the paired difference from the reference design. FWER: at "
                          "least one arm claimed effective where it is truly null (in some stratum, for stratified "
                          "designs). Power: at least one arm claimed effective where it truly works (not defined where "
                          "nothing works). Error bars are 95% Monte Carlo intervals."),
        new_code_cell(
            "def trial_metric(metric):\n"
            "    t = table[(table[\"level\"] == \"trial\") & (table[\"metric\"] == metric)]\n"
            "    return (t.pivot(index=\"scenario\", columns=\"design\", values=\"value\").reindex(index=SCENARIOS, columns=DESIGNS),\n"
            "            t.pivot(index=\"scenario\", columns=\"design\", values=\"mcse\").reindex(index=SCENARIOS, columns=DESIGNS))\n\n\n"
            "def bars(ax, metric, ylabel):\n"
            "    value, mcse = trial_metric(metric)\n"
            "    width = 0.8 / len(DESIGNS)\n"
            "    x = np.arange(len(SCENARIOS))\n"
            "    for i, d in enumerate(DESIGNS):\n"
            "        ax.bar(x + (i - (len(DESIGNS) - 1) / 2) * width, value[d], width, yerr=1.96 * mcse[d], capsize=2, label=d)\n"
            "    ax.set_xticks(x, SCENARIOS, rotation=20, ha=\"right\")\n"
            "    ax.set_ylabel(ylabel)\n\n\n"
            "fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), constrained_layout=True)\n"
            "bars(top, \"power\", \"power\")\n"
            "bars(bottom, \"fwer\", \"family-wise false-positive rate\")\n"
            "top.legend(ncol=3, fontsize=8, loc=\"upper left\")\n"
            "plt.show()"),
        new_markdown_cell("## When selection pays: the effect lives in a stratum\n\n"
                          "In `atm_ceralasertib` durvalumab + ceralasertib works only in ATM-altered tumours. The "
                          "rate at which each design claims that arm effective (`p_claimed`), among all patients or "
                          "in the ATM stratum, and how many patients the arm takes there (`mean_n`):"),
        new_code_cell(
            "arm = table[(table[\"scenario\"] == \"atm_ceralasertib\") & (table[\"treatment\"] == \"durva_ceralasertib\")\n"
            "            & (table[\"level\"] == \"subgroup\")].copy()\n"
            "arm[\"value \u00b1 MCSE\"] = [f\"{v:.3f} \u00b1 {e:.3f}\" if m.startswith(\"p_\") else f\"{v:.1f} \u00b1 {e:.1f}\"\n"
            "                       for v, e, m in zip(arm[\"value\"], arm[\"mcse\"], arm[\"metric\"])]\n"
            "arm.pivot_table(index=[\"design\", \"subgroup\", \"role\"], columns=\"metric\", values=\"value \u00b1 MCSE\",\n"
            "                aggfunc=\"first\", sort=False)[[\"p_claimed\", \"n\"]]"),
        new_markdown_cell("## What selection costs: screening, strata that fill slowly, calendar time\n\n"
                          "Biomarker routing screens more patients per randomized patient (assay failures, waiting "
                          "for results, strata that have closed) and small strata take long to fill."),
        new_code_cell(
            "fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), constrained_layout=True)\n"
            "for ax, (metric, label) in zip(axes, [(\"n_randomized\", \"patients randomized\"),\n"
            "                                     (\"n_screened\", \"patients screened\"),\n"
            "                                     (\"duration_months\", \"months to the last assessment\")]):\n"
            "    value, mcse = trial_metric(metric)\n"
            "    v, e = value.loc[\"pioneer_alternative\"], mcse.loc[\"pioneer_alternative\"]\n"
            "    ax.barh(DESIGNS, v, xerr=1.96 * e, color=\"tab:purple\", capsize=3)\n"
            "    ax.set_xlabel(label)\n"
            "    ax.invert_yaxis()\n"
            "    if ax is not axes[0]:\n"
            "        ax.set_yticks(range(len(DESIGNS)), [])\n"
            "fig.suptitle(\"cost of each design on pioneer_alternative (mean, 95% Monte Carlo interval)\")\n"
            "plt.show()"),
        new_markdown_cell("## Efficiency: patients per correct finding\n\n"
                          "Where a drug works, how many patients does each design spend per trial that finds it? "
                          "(mean patients randomized / power; lower is better)."),
        new_code_cell(
            "power, _ = trial_metric(\"power\")\n"
            "n, _ = trial_metric(\"n_randomized\")\n"
            "(n / power.where(power > 0)).dropna(how=\"all\").round(0)  # NaN: no effective arm overall, or never found"),
        new_markdown_cell("## Paired differences from the all-comer design\n\n"
                          "Because the designs share patients, the difference in power from `allcomer_fixed` has a "
                          "paired standard error (`diff_se`) much smaller than two independent runs would give."),
        new_code_cell(
            "t = table[(table[\"level\"] == \"trial\") & (table[\"metric\"] == \"power\")]\n"
            "t.pivot_table(index=\"design\", columns=\"scenario\", values=[\"diff_vs_reference\", \"diff_se\"]).round(3)"),
    ]


def single_trial_bayes():
    return [
        new_markdown_cell(
            "# One simulated trial, then its Bayesian analysis\n\n"
            "Operating characteristics average over thousands of simulated trials. To trust a design, follow one of "
            "them: replay trial 3 of the seed-1 run of the PIONeeR-like platform (`pioneer_platform`, progression-free "
            "survival, arms entering over calendar time) on `pioneer_alternative`, look at every interim analysis, "
            "then fit a Bayesian survival model with treatment x biomarker interactions to its patients in PyMC and "
            "check the sampler with ArviZ."),
        new_code_cell(
            "import os\n\n"
            "# NUTS draws per chain; the test suite runs this notebook with a small number.\n"
            "DRAWS = int(os.environ.get(\"PLATFORM_SIM_NOTEBOOK_DRAWS\", \"1000\"))\n"
            "SEED, INDEX, N_SIMS = 1, 3, 2000"),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "\n"
            "from platform_sim.spec import Spec\n"
            "from platform_sim.storyboard import format_story, history_figure, replay\n\n"
            "spec = Spec.load(\"pioneer_platform\", \"pioneer_alternative\")\n"
            "story = replay(spec, SEED, INDEX, N_SIMS)\n"
            "story.summary"),
        new_markdown_cell("The replay is exactly trial 3 of `platform-sim run --design pioneer_platform --seed 1 "
                          "--n-sims 2000`: the same patients, randomization and decisions. Its record:"),
        new_code_cell("from platform_sim.storyboard import record_frame\n\nrecord_frame(story).T.head(30)"),
        new_markdown_cell("## The interim analyses\n\nPer arm, the patients and progressions seen and the graduation "
                          "statistic (the predictive probability of a successful phase 3) in each signature:"),
        new_code_cell("print(format_story(story)[:6000])"),
        new_code_cell("fig = history_figure(story)\nplt.show()"),
        new_markdown_cell("The tidy per-analysis table holds every arm x stratum with the posterior median PFS "
                          "and its 95% credible interval:"),
        new_code_cell("story.analyses.query(\"analysis == 4\").head(12)"),
        new_markdown_cell("## Patient-level data\n\nOne row per screened patient: arrival, true and reported "
                          "biomarkers, screening result, arm, PFS, dropout and the tumour assessments."),
        new_code_cell(
            "cols = [\"patient\", \"arrival_months\", \"screening\", \"atm\", \"reported_atm\", \"stk11_or_keap1\",\n"
            "        \"stratum\", \"arm\", \"pfs_months\", \"assessments\", \"progression_seen_months\", \"time\", \"event\"]\n"
            "story.patients[cols].head(10)"),
        new_markdown_cell(
            "## The final Bayesian analysis in PyMC\n\n"
            "An exponential proportional-hazards model with treatment, biomarker-group and treatment x group terms; "
            "the interactions share a hierarchical normal prior, so small groups borrow from the others "
            "(see `docs/final_analysis.md`)."),
        new_code_cell(
            "from platform_sim.bayes.final_analysis import fit_final_analysis, forest_plot, save_netcdf\n\n"
            "data = story.analysis_data()\n"
            "arms = [a for a in spec.design.arm_names if (data[\"arm\"] == a).any()]\n"
            "groups = sorted(data[\"group\"].unique())\n"
            "analysis = fit_final_analysis(data, arms=arms, groups=groups, control=spec.design.control,\n"
            "                              endpoint=\"survival\", draws=DRAWS, tune=DRAWS, chains=2, seed=1)\n"
            "analysis.warnings"),
        new_markdown_cell("ArviZ summary: posterior means, credible intervals, r_hat and effective sample sizes."),
        new_code_cell("analysis.summary.head(15)"),
        new_code_cell("analysis.effects[[\"arm\", \"group\", \"n\", \"events\", \"mean\", \"lower\", \"upper\", \"prob_benefit\"]]"),
        new_code_cell("fig = forest_plot(analysis)\nplt.show()"),
        new_markdown_cell("## Sampler diagnostics"),
        new_code_cell(
            "import arviz as az\n\n"
            "print(f\"divergences: {analysis.divergences}, max r_hat: {analysis.max_r_hat:.3f}, \"\n"
            "      f\"min bulk ESS: {analysis.min_ess_bulk:.0f}\")\n"
            "az.plot_trace(analysis.idata, var_names=[\"tau\"], compact=True)\n"
            "plt.tight_layout()\n"
            "plt.show()"),
        new_markdown_cell("The InferenceData can be saved to NetCDF and read back for further work."),
        new_code_cell(
            "import tempfile\n"
            "from pathlib import Path\n\n"
            "path = save_netcdf(analysis, Path(tempfile.mkdtemp()) / \"posterior.nc\")\n"
            "az.from_netcdf(path)"),
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
        nb = new_notebook(cells=cells(), metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        })
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
