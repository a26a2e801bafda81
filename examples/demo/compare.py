"""Compare the coarse and fine propagations; write the drift as the step's outputs."""

import json
import os

coarse, fine = float(os.environ["COARSE"]), float(os.environ["FINE"])
drift = abs(coarse - fine) / abs(fine)
print(f"coarse={coarse:.6f} fine={fine:.6f} relative drift={drift:.2e}")
verdict = "ok" if drift < 0.05 else "coarse step too big"
with open(os.environ["LOCKSTEP_OUTPUTS"], "w") as out:
    json.dump({"drift": drift, "verdict": verdict}, out)
