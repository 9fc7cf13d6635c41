"""The quality suite's dataset registry: every (template, set) pair, where its data comes from,
whether it is real, the column to predict for tables, and its sizes in the full and smoke runs
(caps: n_train, n_test; None = not in that run)."""
from dataclasses import dataclass

import prep_activity
import prep_detect
import prep_images
import prep_sound
import prep_tables
import prep_text

IMG, TXT, SND = "image-classifier", "text-classifier", "sound-classifier"
TCL, TRG = "tabular-classifier", "tabular-regressor"
MLI = "multi-label-image-classifier"
OD = "object-detector"
ACT = "activity-classifier"


@dataclass
class DataSet:
    template: str
    name: str
    prepare: object  # fn(out, n_train, n_test)
    full: tuple | None
    smoke: tuple | None = None
    target: str | None = None
    real: bool = True

    @property
    def source(self):
        return (self.prepare.__doc__ or "").strip().split("\n")[0].split(":")[0]


SETS = [
    DataSet(IMG, "fashion-mnist", prep_images.fashion_mnist, (2000, 1000), (150, 60)),
    DataSet(IMG, "animal-mnist", prep_images.animal_mnist, (2000, 1000)),
    DataSet(IMG, "mnist-5k", prep_images.mnist_5k, (2000, 1000)),
    DataSet(IMG, "digits-8x8", prep_images.digits_8x8, (1200, 597)),
    DataSet(IMG, "tuxpaint-stamps", prep_images.tuxpaint_stamps, (330, 140)),
    DataSet(MLI, "fashion-multilabel", prep_images.fashion_multilabel, (1500, 600), real=False),
    DataSet(OD, "fashion-on-photos", prep_detect.fashion_on_photos, (240, 100), real=False),
    DataSet(TXT, "spamassassin", prep_text.spamassassin, (3000, 1000), (150, 60)),
    DataSet(TXT, "fortunes-topics", prep_text.fortunes_topics, (3000, 1000)),
    DataSet(TXT, "20newsgroups", prep_text.newsgroups20, (3000, 1000)),
    DataSet(TXT, "reuters-r8", prep_text.reuters_r8, (3000, 1000)),
    DataSet(TXT, "rotten-tomatoes", prep_text.rotten_tomatoes, (3000, 1000)),
    DataSet(SND, "tuxpaint-language", prep_sound.tuxpaint_language, (500, 200)),
    DataSet(SND, "klettres-language", prep_sound.klettres_language, (480, 156)),
    DataSet(SND, "hydrogen-drums", prep_sound.hydrogen_drums, (370, 125)),
    DataSet(SND, "espeak-words", prep_sound.espeak_words, (648, 180), real=False),
    DataSet(TCL, "penguins", prep_tables.penguins, (275, 69), (140, 60), target="species"),
    DataSet(TCL, "adult", prep_tables.adult, (26049, 6512), target="income"),
    DataSet(TCL, "seattle-weather", prep_tables.seattle_weather, (1168, 293), target="weather"),
    DataSet(TCL, "diamonds-cut", prep_tables.diamonds_cut, (43152, 10788), target="cut"),
    DataSet(TCL, "flights-200k", prep_tables.flights, (160000, 40000), target="delayed"),
    DataSet(TCL, "letter", prep_tables.letter, (16000, 4000), target="lettr"),
    DataSet(TCL, "pima-diabetes", prep_tables.pima, (614, 154), target="diabetes"),
    DataSet(TCL, "soybean", prep_tables.soybean, (540, 135), target="Class"),
    DataSet(TRG, "diamonds-price", prep_tables.diamonds_price, (43152, 10788), (150, 60), target="price"),
    DataSet(TRG, "ames-housing", prep_tables.ames, (2344, 586), target="SalePrice"),
    DataSet(TRG, "boston-housing", prep_tables.boston, (404, 102), target="cmedv"),
    DataSet(ACT, "synthetic-gait", prep_activity.synthetic_activities, (200, 100), (50, 25), real=False),
]


def selected(smoke: bool, only: str | None = None):
    """(set, (n_train, n_test)) pairs for this run, in table order."""
    out = []
    for s in SETS:
        caps = s.smoke if smoke else s.full
        if caps is not None and (only is None or s.template == only):
            out.append((s, caps))
    return out
