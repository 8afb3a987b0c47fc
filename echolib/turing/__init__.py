"""Visual Turing test: blinded questionnaires, a rater app, and the analysis of answers.

``questionnaire`` builds the rater folder and the separate key, ``app`` is the
ipywidgets rater app, ``answers`` the append-only answer files, ``analysis``
the statistics, ``study`` the reference study's CSV, ``plots`` the figures.
Submodules are imported on demand so that the rater app stays light.
"""
