"""The README's Python example, verbatim (python/tests/test_readme.py checks the two agree and
runs it in the test venv)."""
import os, tempfile
import optical

models = optical.models_dir()                       # ~/.cache/optical/models
e5 = os.path.join(models, "multilingual-e5-small")
index = optical.Index.create(os.path.join(tempfile.mkdtemp(), "idx"), model=e5)
with index.writer() as w:                           # commits on a clean exit, rolls back on an error
    w.add("nairobi", "Nairobi is the capital and largest city of Kenya.", title="Nairobi", lang="eng")
    w.add_batch([{"id": "kano", "title": "Kano Pillars", "text": "Kano Pillars is a football club founded in 1990.", "lang": "eng"},
                 {"id": "berlin", "title": "Berlin", "text": "Berlin is the capital of Germany.", "lang": "eng"}])
# Hausa question: the shipped student encodes it, the Hausa table translates the BM25 leg.
for hit in index.search("A wace shekara aka kafa Kano pillars?", query_lang="hau", k=2):
    print(hit["rank"], hit["id"], round(hit["score"], 3), hit["explain"])
vectors = optical.Encoder(e5).encode(["capital of Kenya"], role="query")   # numpy (1, 384) float32
print(vectors.shape, vectors.dtype)
try:
    optical.Index.open("/nonexistent")
except optical.NotAnIndexError as e:                 # every error is an optical.OpticalError
    print("error:", e)
