#!/usr/bin/python3
"""Writes ONNX's backend node test cases (node/test_*/model.onnx and
test_data_set_*/{input,output}_N.pb) into OUTDIR, through the generator that
python3-onnx ships.  Debian 12's numpy lacks the aliases the generator still
uses (np.float, np.int, np.bool, np.object); they are set first.

usage: /usr/bin/python3 tools/onnx_node_cases.py OUTDIR"""
import runpy
import sys

import numpy as np

for alias, kind in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if not hasattr(np, alias):
        setattr(np, alias, kind)

if len(sys.argv) != 2:
    sys.exit(__doc__)
sys.argv = ["onnx.backend.test.cmd_tools", "generate-data", "-o", sys.argv[1]]
runpy.run_module("onnx.backend.test.cmd_tools", run_name="__main__")
