"""A document's blocks (documents.py) laid out as a PDF with fpdf2: a title page with what the
document is about, headings, wrapped paragraphs, tables whose headings repeat over page breaks,
and "page N of M" in every footer.

The PDF uses the standard Helvetica font, which needs no font file, in the Windows-1252 encoding:
Latin-1 and typographic dashes, quotes and ellipses. Any other character prints as "?" (the
Markdown keeps every character); arrows and comparison signs are written in plain forms first.
The curly quotes matter: a document quotes what people wrote in them (documents.entry_text).
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from services.review.documents import Document, Facts, Heading, Paragraph, Table

# Characters Windows-1252 lacks, by code point, and their plain forms.
PLAIN = str.maketrans(
    {
        "\u2192": "->",
        "\u2264": "<=",
        "\u2265": ">=",
    }
)
ENCODING = "cp1252"
INK = (33, 37, 41)
ACCENT = (20, 60, 110)
RULE = (200, 205, 212)
HEADINGS = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=ACCENT)


def latin(text: str) -> str:
    """`text` as Helvetica can print it."""
    return text.translate(PLAIN).encode(ENCODING, "replace").decode(ENCODING)


class _Pdf(FPDF):
    def __init__(self, document: Document) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.core_fonts_encoding = ENCODING
        self.document = document
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)
        self.set_title(latin(f"{document.kind}: {document.title}"))
        self.set_author(latin(document.firm))
        self.set_creator("Firebreak")

    def footer(self) -> None:
        if self.page_no() == 1:
            return  # the title page carries no running footer
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110, 117, 125)
        left = latin(f"{self.document.firm} - {self.document.kind}: {self.document.title}")
        self.cell(self.epw * 0.75, 5, left[:110], align="L")
        self.cell(self.epw * 0.25, 5, f"Page {self.page_no()} of {{nb}}", align="R")


def _title_page(pdf: _Pdf, document: Document) -> None:
    pdf.add_page()
    pdf.set_text_color(*ACCENT)
    pdf.set_font("Helvetica", style="B", size=12)
    pdf.cell(0, 8, latin(document.firm.upper()), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.8)
    pdf.line(pdf.l_margin, pdf.get_y() + 2, pdf.w - pdf.r_margin, pdf.get_y() + 2)
    pdf.ln(40)
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 8, latin(document.kind), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", style="B", size=24)
    pdf.set_text_color(*INK)
    pdf.multi_cell(0, 11, latin(document.title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(12)
    pdf.set_font("Helvetica", size=11)
    for label, value in document.cover:
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.cell(50, 7, latin(label))
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 7, latin(value), new_x="LMARGIN", new_y="NEXT")
    if document.notice:
        pdf.set_y(-40)
        pdf.set_font("Helvetica", style="I", size=9)
        pdf.set_text_color(110, 117, 125)
        pdf.multi_cell(0, 5, latin(document.notice), new_x="LMARGIN", new_y="NEXT")


def _heading(pdf: _Pdf, block: Heading) -> None:
    if pdf.get_y() > pdf.h - 45:
        pdf.add_page()  # a heading never sits alone at the foot of a page
    pdf.ln(4)
    pdf.set_font("Helvetica", style="B", size=14)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 8, latin(block.text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.3)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(2)
    pdf.set_text_color(*INK)


def _paragraph(pdf: _Pdf, block: Paragraph) -> None:
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, latin(block.text or "-"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _facts(pdf: _Pdf, block: Facts) -> None:
    for label, value in block.pairs:
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.cell(55, 5.5, latin(label))
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 5.5, latin(value or "-"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _table(pdf: _Pdf, block: Table) -> None:
    if not block.rows:
        _paragraph(pdf, Paragraph(block.empty))
        return
    pdf.set_font("Helvetica", size=8.5)
    pdf.set_draw_color(*RULE)
    widths = block.widths or tuple(1.0 for _ in block.columns)
    with pdf.table(
        col_widths=widths,
        headings_style=HEADINGS,
        line_height=4.6,
        padding=1.2,
        text_align="LEFT",
        first_row_as_headings=True,
    ) as table:
        for row in [block.columns, *block.rows]:
            cells = table.row()
            for value in row:
                cells.cell(latin(value))
    pdf.ln(3)


def pdf(document: Document) -> bytes:
    out = _Pdf(document)
    _title_page(out, document)
    out.add_page()
    for block in document.blocks:
        if isinstance(block, Heading):
            _heading(out, block)
        elif isinstance(block, Paragraph):
            _paragraph(out, block)
        elif isinstance(block, Facts):
            _facts(out, block)
        else:
            _table(out, block)
    return bytes(out.output())
