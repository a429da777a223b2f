"""The dosing session: check-in, pre-dose gate, dose, vitals flowsheet, side effects,
observation, discharge, signing and the Spravato REMS Patient Monitoring Form."""
