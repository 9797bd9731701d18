"""Detection: the rules of law (contract §4) registered in `registry`, run in the warehouse by `run`, on the
people `scope` picks (the whole city, a part, or only whom tonight's facts `touched`); `evaluate` scores the
alerts against a synthetic city's planted truth."""
