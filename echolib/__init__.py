"""echolib: synthetic echocardiogram generation, evaluation and reporting.

Notebooks and the command line are thin front ends; every piece of logic
lives in this package so that it can be tested and reused.
"""

__version__ = "0.1.0"
