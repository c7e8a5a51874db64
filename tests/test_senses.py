"""Every positive name is placed or refused, and stands for the senses a photo of it shows (#23)."""

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import SHARED, jpeg_bytes, read_manifest
from negmine.cli import cli
from negmine.filters.concepts import UnplacedName, judge_classes, resolve_concepts
from negmine.filters.taxonomy import Taxonomy

# What COCO means by each of its 80 category names: LVIS' official COCO-to-synset table
# (lvis-api data/coco_to_synset.json) as WordNet 3.0 offsets; 'stop sign' (a synset LVIS added)
# is WordNet's street sign, 'potted plant' also the plant in it.
COCO = {
    "person": [7846], "bicycle": [2834778], "car": [2958343], "motorcycle": [3790512], "airplane": [2691156],
    "bus": [2924116], "train": [4468005], "truck": [4490091], "boat": [2858304], "traffic light": [6874185],
    "fire hydrant": [3346898], "stop sign": [6794110], "parking meter": [3891332], "bench": [2828884],
    "bird": [1503061], "cat": [2121620], "dog": [2084071], "horse": [2374451], "sheep": [2411705],
    "cow": [2404186], "elephant": [2503517], "bear": [2131653], "zebra": [2391049], "giraffe": [2439033],
    "backpack": [2769748], "umbrella": [4507155], "handbag": [2774152], "tie": [3815615], "suitcase": [2773838],
    "frisbee": [3397947], "skis": [4228054], "snowboard": [4251791], "sports ball": [2779435], "kite": [3621473],
    "baseball bat": [2799175], "baseball glove": [2800213], "skateboard": [4225987], "surfboard": [4363559],
    "tennis racket": [4409806], "bottle": [2876657], "wine glass": [4592099], "cup": [3147509], "fork": [3383948],
    "knife": [3623556], "spoon": [4284002], "bowl": [2880940], "banana": [7753592], "apple": [7739125],
    "sandwich": [7695965], "orange": [7747607], "broccoli": [11876803], "carrot": [12937678],
    "hot dog": [7676602], "pizza": [7873807], "donut": [7639069], "cake": [7628870], "chair": [3001627],
    "couch": [4256520], "potted plant": [3991062, 11536230], "bed": [2818832], "dining table": [3201208],
    "toilet": [4446521], "tv": [4405907], "laptop": [3642806], "mouse": [3793489], "remote": [4074963],
    "keyboard": [3085013], "cell phone": [2992529], "microwave": [3761084], "oven": [3862676],
    "toaster": [4442312], "sink": [4223580], "refrigerator": [3273913], "book": [6410904], "clock": [3046257],
    "vase": [4522168], "scissors": [4148054], "teddy bear": [4399382], "hair drier": [3483316],
    "toothbrush": [4453156],
}


@pytest.fixture(scope="module")
def tax():
    return Taxonomy.load()


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def one(tax, *terms, **kw):
    concepts, _ = resolve_concepts(list(terms), tax, **kw)
    return {c.term: c for c in concepts}


def test_all_80_coco_names_mean_what_coco_means(tax):
    assert len(COCO) == 80
    for name, want in COCO.items():
        c = one(tax, name)[name]
        assert set(want) <= set(c.synsets), (name, [tax.label(s) for s in c.synsets])
    # the names WordNet spells otherwise, exactly what COCO means
    assert one(tax, "cell phone")["cell phone"].synsets == [2992529]
    assert one(tax, "sports ball")["sports ball"].synsets == [2779435]
    assert set(one(tax, "potted plant")["potted plant"].synsets) == {3991062, 11536230}
    assert one(tax, "remote")["remote"].synsets == [4074963]          # the remote control
    assert 4405907 in one(tax, "tv")["tv"].synsets                    # the television set
    hot_dog = one(tax, "hot dog")["hot dog"]
    assert set(hot_dog.synsets) == {7676602, 7697537}                 # the food (sausage, sandwich) ...
    assert 10187710 in [s for s, _ in hot_dog.dropped]                # ... not the show-off


def test_names_side_by_side_keep_what_each_means(tax):
    # every COCO name in one run (a COCO-style export's folders) means what it means alone: a name
    # that is a thing of its own is never read as a modifier of another's head noun ('dog' is not
    # 'dog food' beside 'food', 'cat' not the 'cat bear', 'bear' not the lesser panda)
    together = one(tax, *COCO)
    for name, want in COCO.items():
        assert set(want) <= set(together[name].synsets), (name, together[name].how,
                                                          [tax.label(s) for s in together[name].synsets])
    # CIFAR-10's class folders; raccoons beside dogs (not 'raccoon dog': raccoons would be "other")
    cifar = one(tax, "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert cifar["bird"].synsets == [1503061] and cifar["cat"].synsets == [2121620]
    assert one(tax, "raccoon", "dog")["raccoon"].synsets == [2508021]
    # a word that names no thing of its own still stands for the compound
    assert set(one(tax, "black", "grizzly")["black"].synsets) == {2133161, 2133704}     # black bears
    assert one(tax, "polar", "grizzly")["polar"].synsets == [2134084]                  # ice bear
    assert one(tax, "snow", "leopard")["snow"].synsets == [2128757]                    # snow leopard


def test_a_photo_of_a_dog_shows_a_dog_not_a_cad(tax):
    dog = one(tax, "dog")["dog"]
    assert dog.synsets == [2084071]
    why = dict(dog.dropped)
    assert why[9886220] == "rare sense: tag count 0 vs 42"            # cad
    assert {10114209, 9886220, 3901548, 2710044} <= set(why)          # frump, cad, pawl, andiron
    labels = ["person", "dog", "beagle", "frankfurter", "andiron", "man", "hotdog, hot dog, red hot"]
    got = {v.label for v in judge_classes(labels, [dog], tax) if v.excluded}
    assert got == {"dog", "beagle"}
    # a wnid stays exact; and the old every-sense reading is one --concept away
    assert one(tax, "n10023039")["n10023039"].synsets == [10023039]


def test_ambiguous_names_keep_every_common_sense_and_context_settles_them(tax):
    mouse = one(tax, "mouse")["mouse"]
    assert set(mouse.synsets) == {2330245, 3793489}                   # the rodent and the device
    both = one(tax, "mouse", "keyboard")
    assert both["mouse"].synsets == [3793489]                         # beside a keyboard: the device
    assert any("far from the other positives" in r for s, r in both["mouse"].dropped if s == 2330245)
    assert 2330245 in one(tax, "mouse", "cat")["mouse"].synsets       # beside a cat: the rodent
    # a modifier of another positive's head noun stands for the compound, not its own senses
    black = one(tax, "teddy", "grizzly", "black")["black"]
    assert set(black.synsets) == {2133161, 2133704}                   # American and Asiatic black bear
    assert {10852130, 13983807} <= {s for s, _ in black.dropped}      # Black man, total darkness


def test_a_folder_named_with_a_dataset_suffix_is_read_as_its_known_part(tax):
    c = one(tax, "raccoon-voc")["raccoon-voc"]
    assert c.synsets == [2508021] and "read as 'raccoon'" in c.note
    assert one(tax, "01_raccoon")["01_raccoon"].synsets == [2508021]
    with pytest.raises(UnplacedName, match="cannot place the positive name 'qzx-voc'"):
        one(tax, "qzx-voc")
    with pytest.raises(UnplacedName, match="cats_and_dogs"):       # never one of two things it names
        one(tax, "cats_and_dogs")


def test_concept_names_a_name_exactly(tax):
    assert one(tax, "zorblax", named={"zorblax": "n02084071"})["zorblax"].synsets == [2084071]
    assert one(tax, "phone-ish", named={"phone-ish": "cellphone"})["phone-ish"].synsets == [2992529]
    with pytest.raises(UnplacedName, match="--concept zorblax=flibber"):
        one(tax, "zorblax", named={"zorblax": "flibber"})
    with pytest.raises(UnplacedName, match="--concept 'zorblx': no positive folder or --exclude name"):
        one(tax, "zorblax", named={"zorblx": "n02084071"})          # a misspelt --concept is not ignored


@pytest.fixture
def wnid_pool(tmp_path):
    """An ImageNet-train-layout pool: one real photo in each of 6 wnid folders, the cellphone among them."""
    rows = {r.split(",")[1]: r.split(",")[3] for r in (SHARED / "imagenet-500" / "classes.csv").read_text().splitlines()[1:]}
    pool = tmp_path / "pool"
    wnids = ["n01440764", "n02992529", "n02084071", "n02123045", "n03793489", "n02330245"]
    photos = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
    for k, w in enumerate(wnids):
        (pool / w).mkdir(parents=True)
        src = SHARED / "imagenet-500" / rows[w] if w in rows else photos[k]
        shutil.copy(src, pool / w / f"{w}_0001.JPEG")
    return pool


def positives(tmp_path, name, n=4):
    root = tmp_path / "positives" / name
    root.mkdir(parents=True)
    for f in sorted((SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:n]:
        shutil.copy(f, root / f.name)
    return root.parent


def test_coco_named_positive_keeps_its_imagenet_class_out(tmp_path, wnid_pool):
    pos = positives(tmp_path, "cell phone")
    res = invoke("sample", "-p", pos, "-s", wnid_pool, "--count", 6, "--split", "0.5,0.5", "--allow-short",
                 "--seed", 1, "--workers", 1, "-q", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    labels = {r["label"] for r in read_manifest(tmp_path / "out") if r["role"] == "negative"}
    assert "n02992529" not in labels and len(labels) == 5
    cls = invoke("classes", "-p", pos, "-s", wnid_pool)
    assert "positive 'cell phone' (vocabulary (coco)): cellular telephone (n02992529)" in cls.output
    assert "n02992529 (1 rows): is the positive cellular telephone" in cls.output


def test_unplaced_name_stops_the_run_before_any_work(tmp_path, wnid_pool):
    pos = positives(tmp_path, "zorblax")
    out = tmp_path / "out"
    res = invoke("sample", "-p", pos, "-s", wnid_pool, "--count", 4, "--allow-short", "-o", out)
    assert res.exit_code == 1 and not out.exists()
    errors = [x for x in res.output.splitlines() if x.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith("Error: cannot place the positive name 'zorblax'")
    assert "nearest WordNet entries" in errors[0] and '--concept "zorblax=WNID_OR_LEMMA"' in errors[0]
    assert res.output.rstrip("\n").endswith(errors[0])
    # --exclude follows the same rule; --concept places the name
    res = invoke("classes", "-s", wnid_pool, "-x", "flibbertigibbetx")
    assert res.exit_code == 1 and "cannot place the positive name 'flibbertigibbetx'" in res.output
    res = invoke("sample", "-p", pos, "-s", wnid_pool, "--count", 4, "--allow-short", "--seed", 1, "--workers", 1,
                 "-q", "--concept", "zorblax=cellphone", "-o", out)
    assert res.exit_code == 0, res.output
    assert "n02992529" not in {r["label"] for r in read_manifest(out) if r["role"] == "negative"}
    bad = invoke("classes", "-s", wnid_pool, "-x", "dog", "--concept", "no-equals-sign")
    assert bad.exit_code == 2 and "expected NAME=WNID_OR_LEMMA" in bad.output


def test_classes_and_the_dry_run_show_senses_used_and_dropped(tmp_path, wnid_pool):
    pos = positives(tmp_path, "raccoon-voc")
    res = invoke("classes", "-s", wnid_pool, "-x", "dog")
    assert res.exit_code == 0, res.output
    assert "positive 'dog' (lemma): dog (n02084071)\n" in res.output
    assert "  dropped: cad (n09886220): rare sense: tag count 0 vs 42" in res.output
    res = invoke("classes", "-s", wnid_pool, "-x", "mouse")
    assert ("positive 'mouse' (lemma): mouse (n02330245); mouse (n03793489) (ambiguous: every one of these "
            "senses is excluded)") in res.output
    assert "n02330245 (1 rows)" in res.output and "n03793489 (1 rows)" in res.output
    res = invoke("sample", "-p", pos, "-s", wnid_pool, "--count", 4, "--allow-short", "--dry-run", "-o",
                 tmp_path / "dry")
    assert res.exit_code == 0, res.output
    assert "positive 'raccoon-voc' (lemma, as 'raccoon'): raccoon (n02508021)" in res.output
    assert "note: positive name 'raccoon-voc' is read as 'raccoon'" in res.output
    out = tmp_path / "out"
    res = invoke("sample", "-p", pos, "-s", wnid_pool, "--count", 4, "--allow-short", "--seed", 1, "--workers", 1,
                 "-o", out)
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "negmine.json").read_text())
    assert any("read as 'raccoon'" in w for w in meta["warnings"])
    concept = meta["classes"]["concepts"][0]
    assert concept["synsets"] == ["raccoon (n02508021)"]
    assert concept["dropped"][0]["synset"] == "raccoon (n14765856)"      # the fur


def test_dog_positives_keep_people_in_a_multilabel_pool(tmp_path):
    import datasets

    lists = [["person"], ["dog", "person"], ["person", "car"], ["cat"], ["dog"], ["person", "bicycle"]] * 3
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": jpeg_bytes(900 + k), "path": None} for k in range(len(lists))], "labels": lists},
        features=datasets.Features({"image": datasets.Image(), "labels": datasets.List(datasets.Value("string"))}))
    pool = tmp_path / "pool"
    (pool / "data").mkdir(parents=True)
    ds.to_parquet(str(pool / "data" / "train-00000-of-00001.parquet"))
    res = invoke("classes", "-s", pool, "-x", "dog", "--json")
    assert res.exit_code == 0, res.output
    src = json.loads(res.output)["sources"][0]
    assert [e["label"] for e in src["excluded"]] == ["dog"]
    assert src["images_excluded"] == sum("dog" in x for x in lists)


def test_mine_places_names_the_same_way(tmp_path, wnid_pool):
    pos = positives(tmp_path, "zorblax")
    scores = tmp_path / "scores.csv"
    files = sorted(p.relative_to(wnid_pool).as_posix() for p in wnid_pool.rglob("*.JPEG"))
    scores.write_text("file,prob\n" + "".join(f"{f},{0.9 - i / 20}\n" for i, f in enumerate(files)))
    args = ["mine", "-q", "--workers", "1", "--scores", scores, "--pool", wnid_pool, "--count", 5, "--skip-top", 0,
            "--positives", pos]
    r = invoke(*args, "-o", tmp_path / "refused")
    assert r.exit_code == 1 and "cannot place the positive name 'zorblax'" in r.output
    assert not (tmp_path / "refused").exists()
    r = invoke(*args, "--concept", "zorblax=n02992529", "-o", tmp_path / "hard")
    assert r.exit_code == 0, r.output
    kept = {k["id"] for k in read_manifest(tmp_path / "hard")}
    assert len(kept) == 5 and not any(k.startswith("n02992529/") for k in kept)
