"""A photo evaluation set of MNIST test digits and a command that runs it through a server.

The generator (:mod:`evaluation.photos`, :mod:`evaluation.sheets`) is deliberately separate
from ``training/augment.py``: it renders a digit as pen ink on a sheet of paper at phone-photo
sizes and then applies photo conditions (light, colour, paper, ink, geometry, blur, JPEG, EXIF),
so the evaluation is not the training distribution again. Only MNIST **test** digits are used.

``digits-eval photos --out DIR`` writes the set; ``digits-eval run --set DIR`` sends it to a
server's HTTP API (``/v1/classify`` per digit, ``/v1/read`` per sheet) and reports per model.
"""
