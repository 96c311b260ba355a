from masking import unmasker
from masking.cli import StdinTextCommand


class Command(StdinTextCommand):
    help = "Restore masked tokens: reads stdin, writes exactly the restored text to stdout."
    operation = "unmasking"

    def transform(self, text, tenant):
        result = unmasker.unmask_texts([text], tenant, source="cli")
        if result.unresolved:
            self.stderr.write(f"{len(result.unresolved)} token(s) not found, left as they are")
        return result.texts[0]
