"""txtai's ONNX vectors with a bounded thread count.

txtai's own `ONNX` vectors (tokenizer.json + mean pooling, then txtai's normalisation: the same
pooling as sentence-transformers) open the session with ONNX Runtime's default of one thread per
core. The index service shares its cores with the gRPC server and the other services, so the
thread count follows INKWELL_TORCH_THREADS, like the PyTorch engine. Named in the txtai config as
`method = "services.index.onnx_vectors.ThreadedOnnx"`, txtai's supported way to plug in vectors.
"""

from __future__ import annotations

from typing import Any

import onnxruntime as ort
from txtai.vectors.dense.onnx import ONNX


class ThreadedOnnx(ONNX):
    def loadmodel(self, path: str) -> tuple[Any, Any]:
        options = ort.SessionOptions()
        threads = int(self.config.get("threads") or 0)  # 0: ONNX Runtime's default
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, ["CPUExecutionProvider"])
        tokenizer = self.loadtokenizer(path)
        tokenizer.enable_padding()
        maxlength = self.config.get("maxlength")
        if maxlength:
            tokenizer.enable_truncation(max_length=int(maxlength))
        return session, tokenizer
