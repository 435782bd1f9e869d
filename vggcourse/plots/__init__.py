"""The course's figures, drawn with matplotlib.

Each function draws one figure (or onto the ``ax`` it is given) and returns
the matplotlib ``Axes`` or ``Figure``, so a chapter can add to it and then
call ``plt.show()``. The functions are grouped by the chapter that teaches
with them:

- ``architecture``: a VGG block, VGG as a stack of blocks, receptive fields;
- ``trace``: parameters, MACs, activation memory and shapes, layer by layer;
- ``training``: images, learning curves and a confusion matrix;
- ``explain``: filters, feature maps, heatmaps, an embedding, transfer results;
- ``history``: starting points, dense evaluation and the networks after VGG.

The course's look is ``STYLE``. Importing this package changes nothing in
matplotlib; a chapter calls ``use_style()`` once, after its imports, so that
its own figures and the package's look alike. Every figure that a function
here creates has the course's size and layout either way.
"""

from vggcourse.plots import architecture, explain, history, trace, training
from vggcourse.plots._base import KIND_COLORS, STYLE, use_style
from vggcourse.plots.architecture import *
from vggcourse.plots.explain import *
from vggcourse.plots.history import *
from vggcourse.plots.trace import *
from vggcourse.plots.training import *

__all__ = [
    "STYLE",
    "KIND_COLORS",
    "use_style",
    *trace.__all__,
    *training.__all__,
    *architecture.__all__,
    *explain.__all__,
    *history.__all__,
]
