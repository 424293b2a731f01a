"""Evaluation protocols: paragraph-video retrieval, nearest neighbours, few-shot, localisation, classification,
step grounding scores (`score`), and free-text moment search (`search`, beside paragraph retrieval: both rank a
store's videos for sentences).

The protocols' choices are declared here, in a module that imports nothing heavy, so
the commands build their option lists from them (`commands._common.choices`).
"""

RETRIEVAL_TASKS = ("paragraph-video", "video-paragraph", "nn")  # what is ranked (nn: TCLR's nearest neighbours)
BACKGROUNDS = ("removed", "kept")  # YouCookII retrieval: clips outside every step dropped, or kept
RETRIEVAL_LAYOUTS = ("youcook2", "coin")  # caption layouts whose videos are paragraphs of captions (data.layouts)
SCORERS = ("corrected", "released")  # DTW / OTAM scored as corrected, or as TempCLR's release does
SIMILARITIES = ("dot", "cosine")  # raw dot products of the outputs (released), or unit vectors
STEP_SCORES = (
    "log-softmax",
    "cosine",
)  # localize: log-softmax over the video's steps of dot products (released), or cosine
