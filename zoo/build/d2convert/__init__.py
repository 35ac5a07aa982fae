"""`zoo convert-d2`: a detectron2 checkpoint and its config as a zoo manifest and safetensors weights, ready for
``zoo build --manifest``: ``checkpoint`` reads the weights without running pickled code, ``config`` the YAML with its
``_BASE_`` chain, ``spec`` maps the config to the builder's arguments (refusing what it cannot reproduce, by key),
``state`` renames and reorders the tensors and checks them against the model, ``manifest`` writes the files."""
