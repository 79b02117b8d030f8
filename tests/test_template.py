"""The report's layout is a jinja2 template that a sponsor's template extends or replaces."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import platform_sim as ps
from platform_sim.cli import EXIT_BAD_INPUT, main
from platform_sim.config import ConfigError
from platform_sim.report.html import TEMPLATE, TEMPLATE_DIR, page

SPONSOR = """{% extends "report.html.j2" %}
{% block style %}{{ super() }} h1 { color: #00338d; }{% endblock %}
{% block banner %}<p class="sponsor">Prepared for the steering committee of {{ title }}</p>{% endblock %}
"""


@pytest.fixture(scope="module")
def res():
    return ps.run("allcomer_fixed", "pioneer_null", n_sims=30, seed=1)


def test_the_shipped_template_renders_the_page():
    text = page(
        "A <b>title</b>",
        "a & subtitle",
        [("one", "One")],
        ['<section id="one"><h2>One</h2></section>'],
        '<footer id="reproducibility"></footer>',
    )
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">') and text.endswith("</body></html>\n")
    assert "<title>A &lt;b&gt;title&lt;/b&gt;</title>" in text and "a &amp; subtitle" in text
    assert '<li><a href="#one">One</a></li>' in text and '<section id="one"><h2>One</h2></section>' in text
    assert (TEMPLATE_DIR / "report.css").read_text() in text
    # naming the shipped template is the default
    assert page("t", "s", [], [], "", template=TEMPLATE_DIR / TEMPLATE) == page("t", "s", [], [], "")


def test_a_sponsor_template_extends_the_shipped_one(res, tmp_path):
    template = tmp_path / "sponsor.html.j2"
    template.write_text(SPONSOR)
    plain = res.report(tmp_path / "plain.html").read_text()
    branded = res.report(tmp_path / "branded.html", template=template).read_text()
    assert '<p class="sponsor">Prepared for the steering committee of Operating characteristics' in branded
    assert "h1 { color: #00338d; }" in branded and "sponsor" not in plain

    # the sections are the same
    def main(text: str) -> str:
        return text[text.index("<main>") : text.index("</main>")]

    assert main(branded) == main(plain) and main(plain).count("<section") >= 5


def test_the_report_command_takes_a_template(res, tmp_path):
    out = res.save(tmp_path / "run")
    template = tmp_path / "sponsor.html.j2"
    template.write_text(SPONSOR)
    result = CliRunner().invoke(main, ["report", str(out), "--template", str(template)])
    assert result.exit_code == 0, result.output
    assert 'class="sponsor"' in (out / "report.html").read_text()


def test_a_broken_template_is_a_clear_error(res, tmp_path):
    broken = tmp_path / "broken.html.j2"
    broken.write_text('{% extends "report.html.j2" %}\n{% block banner %}{{ title }\n{% endblock %}\n')
    with pytest.raises(ConfigError, match=r"broken\.html\.j2: template: line 2"):
        res.report(tmp_path / "x.html", template=broken)
    undefined = tmp_path / "undefined.html.j2"
    undefined.write_text('{% extends "report.html.j2" %}{% block banner %}{{ sponsor_name }}{% endblock %}')
    with pytest.raises(ConfigError, match="cannot be rendered: 'sponsor_name' is undefined"):
        res.report(tmp_path / "x.html", template=undefined)
    out = res.save(tmp_path / "run")
    for template in (broken, tmp_path / "missing.html.j2"):
        result = CliRunner().invoke(main, ["report", str(out), "--template", str(template)])
        assert result.exit_code == EXIT_BAD_INPUT and result.stderr.startswith("error:"), result.output
        assert "Traceback" not in result.output
