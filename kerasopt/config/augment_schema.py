"""``data.augment``: training-batch augmentation (flip, rotation, ..., RandAugment, random resized crop, mixing)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from kerasopt.config.base import Strict

RANDAUGMENT_OPS = ("auto_contrast", "equalize", "invert", "rotate", "posterize", "solarize", "solarize_add", "color",
                   "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y")


class RandAugmentConfig(Strict):
    """``data.augment.randaugment``: timm's ``rand-m9-mstd0.5-inc1`` by default (kerasopt/data/randaugment.py).

    Example:
        ``randaugment: {num_ops: 2, magnitude: 9}``
    """

    num_ops: int = Field(2, ge=1, le=8, description="operations per image (timm: 2)")
    magnitude: float = Field(9.0, ge=0.0, le=10.0, description="0..10 (timm's ImageNet recipe: 9)")
    magnitude_std: float = Field(0.5, ge=0.0, description="per-operation noise on the magnitude (timm: 0.5)")
    prob: float = Field(0.5, ge=0.0, le=1.0, description="chance each drawn operation is applied (timm: 0.5)")
    ops: Optional[list[str]] = Field(None, description="the operations to draw from; default all 15: "
                                     + ", ".join(RANDAUGMENT_OPS))
    value_range: Optional[list[float]] = Field(
        None, description="[low, high] of the pixels before normalization; default: 0..255 for 8-bit images, "
        "else the training split's min and max")

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        if v is None:
            return v
        unknown = [o for o in v if o not in RANDAUGMENT_OPS]
        if unknown:
            raise ValueError(f"unknown operation {unknown[0]!r}; choose from {', '.join(RANDAUGMENT_OPS)}. "
                             f"Received: {v}")
        if not v:
            raise ValueError("needs at least one operation (leave it out for all 15)")
        return list(dict.fromkeys(v))

    @field_validator("value_range")
    @classmethod
    def _range(cls, v: Optional[list[float]]) -> Optional[list[float]]:
        if v is not None and (len(v) != 2 or not v[0] < v[1]):
            raise ValueError(f"must be [low, high] with low < high. Received: {v}")
        return v


class RandomResizedCropConfig(Strict):
    """``data.augment.random_resized_crop``: the Inception / timm training crop (kerasopt/data/crops.py).

    Example:
        ``random_resized_crop: {scale: [0.08, 1.0], ratio: [0.75, 1.3333]}``
    """

    scale: list[float] = Field(default_factory=lambda: [0.08, 1.0], description="share of the image's area, "
                               "[low, high] (timm: 0.08..1; small data sets do better with 0.25..1 or 0.5..1)")
    ratio: list[float] = Field(default_factory=lambda: [0.75, 4 / 3], description="width / height, [low, high]")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1] <= 1:
            raise ValueError(f"must be [low, high] with 0 < low <= high <= 1. Received: {v}")
        return v

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1]:
            raise ValueError(f"must be [low, high] with 0 < low <= high. Received: {v}")
        return v


class AugmentConfig(Strict):
    """Training-batch augmentation, each draw seeded by the batch number (kerasopt/data/pipeline.py); never validation.

    Order: random_resized_crop, flip, rotation, translation, zoom, contrast (the Keras layers' meanings),
    randaugment, then mixup/cutmix after the labels are one-hot.
    """

    random_resized_crop: Optional[RandomResizedCropConfig] = Field(
        None, description="a random box resized to the training size, first of all; image folders cut it from "
        "the file each epoch (no decoded cache for training). {} or true = timm's scale 0.08..1, ratio 3/4..4/3")
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "none"
    rotation: float = Field(0.0, ge=0.0, le=1.0, description="fraction of 2*pi")
    translation: float = Field(0.0, ge=0.0, le=1.0, description="fraction of height/width")
    zoom: float = Field(0.0, ge=0.0, lt=1.0, description="fraction; 0.1 means +-10%")
    contrast: float = Field(0.0, ge=0.0, le=1.0)
    randaugment: Optional[RandAugmentConfig] = Field(
        None, description="RandAugment after the layers above: {num_ops, magnitude, ...}; {} = timm's defaults")
    # batch mixing (kerasopt/data/mixing.py): soft targets, training batches only
    mixup: float = Field(0.0, ge=0.0, description="Beta(alpha, alpha) of mixup; 0 = off (timm: 0.8, small data 0.2)")
    cutmix: float = Field(0.0, ge=0.0, description="Beta(alpha, alpha) of cutmix; 0 = off (timm: 1.0)")
    mix_prob: float = Field(1.0, ge=0.0, le=1.0, description="share of batches mixed")
    switch_prob: float = Field(0.5, ge=0.0, le=1.0, description="with mixup and cutmix both on: share of "
                               "mixed batches that use cutmix")

    @field_validator("randaugment", "random_resized_crop", mode="before")
    @classmethod
    def _on_off(cls, v: object) -> object:
        """``true`` is timm's recipe, ``false`` is off."""
        return {} if v is True else None if v is False else v

    @property
    def per_image(self) -> bool:
        """Anything that changes images: the Keras layers or RandAugment."""
        return self.enabled or self.randaugment is not None or self.random_resized_crop is not None

    @property
    def enabled(self) -> bool:
        """Any of flip/rotation/translation/zoom/contrast (image-only); mixing is :attr:`mixing`."""
        return self.flip != "none" or any((self.rotation, self.translation, self.zoom, self.contrast))

    @property
    def mixing(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0
