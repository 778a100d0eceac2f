"""`hil run chain` on the default station (stations/twin.yaml: Profile A with pump-induced
quasiparticle loss and shift, the laser's settle time and instrument time) recovers the device
with no suspect result: issue 6's tolerances (5 % on kappa_o, kappa_m, f_m, g0, P_C1 and the
fridge's a; 5 % on eta_total and 20 % on n_add) against the twin's input parameters, and the
microwave mode as the pump leaves it (physics.md §1.2: kappa_m,0 + b_k P^gamma,
f_m - b_f P^gamma, the pulse's in-pulse mean of the steady values) within 5 % of its change."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hil.cli import main
from hil.twin import TwinLab, TwinParams
from hil.twin.physics import active_effects

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "stations" / "twin.yaml"
IDEAL = ROOT / "stations" / "twin_ideal.yaml"


def test_the_default_station_is_the_ideal_one_plus_a_real_devices_effects() -> None:
    ideal = yaml.safe_load(IDEAL.read_text())
    real = yaml.safe_load(DEFAULT.read_text())
    assert set(real["twin"]) - set(ideal["twin"]) == {"quasiparticle", "timing"}
    assert {k: v for k, v in real.items() if k != "twin"} == {k: v for k, v in ideal.items() if k != "twin"}
    assert active_effects(TwinParams.from_mapping(real["twin"])) == {"quasiparticle"}
    assert active_effects(TwinParams.from_mapping(ideal["twin"])) == set()


def test_chain_recovers_the_device_with_the_realistic_effects(tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    result = CliRunner().invoke(main, ["run", "chain", "--station", str(DEFAULT), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(CliRunner().invoke(main, ["show", str(out), "--json"]).output)
    assert summary["status"] == "completed"
    doubted = {f"{step}.{name}": r["suspect"] for step, data in summary["steps"].items()
               for name, r in data["results"].items() if "suspect" in r}
    assert doubted == {}
    twin = TwinLab(TwinParams.from_mapping(yaml.safe_load(DEFAULT.read_text())["twin"]))
    truth = twin.truth()

    def value(step: str, name: str) -> float:
        return summary["steps"][step]["results"][name]["value"]

    for step, name in [("optical_resonance", "kappa_o_hz"), ("microwave_resonance", "kappa_m_hz"),
                       ("microwave_resonance", "f_m_hz"), ("efficiency_vs_pump", "g0_hz"),
                       ("efficiency_vs_pump", "p_c1_w")]:
        assert value(step, name) == pytest.approx(truth[name], rel=0.05), (step, name)
    assert value("fridge_load", "cooling_a_w_per_k2") == pytest.approx(truth["cooling_a_w_per_k2"], rel=0.05)

    # The pumped mode at the operating point: the in-pulse mean of the steady loss and shift.
    physics = twin.physics
    q = twin.params.quasiparticle
    in_pulse = physics._qp_fractions()[0]
    power = value("bidirectional", "pump_power_w")
    d_kappa = in_pulse * q.loss_hz_per_w_gamma * power ** q.exponent
    d_f = in_pulse * q.shift_hz_per_w_gamma * power ** q.exponent
    assert value("bidirectional", "kappa_m_hz") - truth["kappa_m_hz"] == pytest.approx(d_kappa, rel=0.05)
    assert truth["f_m_hz"] - value("bidirectional", "f_m_hz") == pytest.approx(d_f, rel=0.05)
    # The loss coefficient within 3 of its standard errors, which carry the priors' common-mode
    # shares (the optical dip's width and depth, f_m, the pump detuning: over 12 seeds of this
    # station its pulls scatter with rms 1.2, docs/checks.md) and stay below 6 %.
    loss = summary["steps"]["efficiency_vs_pump"]["results"]["kappa_m_pump_loss_hz"]
    truth_loss = in_pulse * q.loss_hz_per_w_gamma
    assert abs(loss["value"] - truth_loss) <= 3 * loss["stderr"] <= 3 * 0.06 * truth_loss
    assert value("efficiency_vs_pump", "f_m_pump_shift_hz") == pytest.approx(
        in_pulse * q.shift_hz_per_w_gamma, rel=0.05)

    # eta_total and the bandwidth against the pumped device's model (physics.md §1.3).
    detuning = value("efficiency_vs_pump_pump_detuning", "pump_detuning_hz")
    pumped = physics.transducer_at(power, in_pulse)
    model = float(pumped.efficiency(power, detuning))
    assert value("bidirectional", "eta_total") == pytest.approx(model, rel=0.05)
    bw_power = value("conversion_bandwidth", "pump_power_w")
    at_bw = physics.transducer_at(bw_power, in_pulse)
    bandwidth = at_bw.bandwidth_hz(float(at_bw.cooperativity(bw_power, detuning)),
                                   float(at_bw.signal_detuning_hz(detuning)))
    assert value("conversion_bandwidth", "bandwidth_hz") == pytest.approx(bandwidth, rel=0.02)
    # n_add of the mode as the pump leaves it (its eta_m is lower by the quasiparticle loss)
    noise_power = value("added_noise", "pump_power_w")
    noise = replace(physics.noise, transducer=physics.transducer_at(noise_power, in_pulse))
    n_add = noise.added_noise("m->o", noise_power, detuning,
                              t_bath_k=value("added_noise", "mxc_temperature_k"))
    assert value("added_noise", "n_add") == pytest.approx(n_add, rel=0.2)
