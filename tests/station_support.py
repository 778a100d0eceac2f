"""A small twin station for runner, safety and resume tests: the laser and the power meter."""

# The optical corner of the twin lab, as these tests need it (stations/twin.yaml grows with the
# lab; the tests keep to what they exercise).
OPTICAL_STATION = """\
sim:
  lab: sim_profiles:lab.yaml
twin:
  seed: 1
instruments:
  laser:
    type: instruments.santec_tsl570.SantecTSL570
    address: TCPIP0::192.168.1.50::5000::SOCKET
    parameters:
      power_dbm: {limits: [-15, 10]}
  powermeter:
    type: instruments.thorlabs_pm100d.ThorlabsPM100D
    address: USB0::0x1313::0x8078::P0012345::INSTR
roles:
  pump: laser
  meter: powermeter
"""
