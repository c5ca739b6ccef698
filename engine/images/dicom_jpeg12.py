"""12-bit lossy JPEG in DICOM ("JPEG Extended", 1.2.840.10008.1.2.4.51), decoded by GDCM.

A pydicom decoder plugin (``is_available``, ``DECODER_DEPENDENCIES`` and
`decode_frame`, as pydicom's plugin guide asks), registered by
`linnaeus.engine.images.dicom`. pydicom's own GDCM plugin refuses 12-bit
samples and its Pillow plugin reads 8-bit JPEG only; the one other decoder,
pylibjpeg-libjpeg, is GPL. GDCM itself decodes them when it is told that the
samples are 12-bit, which picks its 12-bit JPEG codec from the start.
"""

from __future__ import annotations

from pydicom.pixels.decoders.base import DecodeRunner
from pydicom.uid import UID
from pydicom.uid import JPEGExtended12Bit

try:
    import gdcm
except ImportError:  # pydicom asks is_available() first; every other syntax still reads
    gdcm = None

LABEL = "linnaeus-gdcm-12bit"
DECODER_DEPENDENCIES = {JPEGExtended12Bit: ("python-gdcm>=3.0.10",)}
_JPEG_SAMPLE_BITS = 12


def is_available(uid: UID) -> bool:
    """Whether this plugin decodes ``uid`` here: 12-bit JPEG, with GDCM installed."""
    return gdcm is not None and uid == JPEGExtended12Bit


def decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """One encoded frame ``src`` as 16-bit samples, laid out as ``runner`` describes them."""
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetDataElement(element)
    photometric = gdcm.PhotometricInterpretation.GetPIType(runner.photometric_interpretation)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
    if runner.samples_per_pixel > 1:
        image.SetPlanarConfiguration(runner.planar_configuration)
    syntax = gdcm.TransferSyntax.GetTSType(str.__str__(runner.transfer_syntax))
    image.SetTransferSyntax(gdcm.TransferSyntax(syntax))
    # GDCM picks its 8, 12 or 16-bit JPEG codec by the allocated bits; 12 picks the
    # right one (16 would fail first, print to stderr and retry), and its output
    # samples are 16 bits wide either way.
    bits_stored = runner.bits_stored
    image.SetPixelFormat(
        gdcm.PixelFormat(
            runner.samples_per_pixel,
            _JPEG_SAMPLE_BITS,
            bits_stored,
            bits_stored - 1,
            runner.pixel_representation,
        )
    )
    buffer = image.GetBuffer()
    if buffer is None:
        raise ValueError("the 12-bit JPEG data is damaged: GDCM could not decode it")
    # GDCM hands the buffer over as a str; surrogateescape gives back its bytes.
    return buffer.encode("utf-8", "surrogateescape")
