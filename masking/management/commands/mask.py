from masking import masker
from masking.cli import StdinTextCommand


class Command(StdinTextCommand):
    help = "Mask AWS identifiers: reads stdin, writes exactly the masked text to stdout."

    def transform(self, text, tenant):
        return masker.mask_texts([text], tenant, source="cli").texts[0]
