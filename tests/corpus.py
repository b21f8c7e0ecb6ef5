"""A small multi-format corpus with known facts at known places, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

# question -> (file, page) that answers it; every fact appears in exactly one file.
FACTS = {
    "How much power does the Zephyr turbine produce?": ("reports/turbine.pdf", 2),
    "What colour is the emergency valve on the Zephyr turbine?": ("reports/turbine.pdf", 3),
    "How many days of paid leave do employees get?": ("handbook.md", None),
    "What is the maximum load of the Orion crane?": ("specs.docx", None),
    "Which region had the highest sales growth in the second quarter?": ("deck.pptx", 2),
    "How much is budgeted for server hardware?": ("budget.xlsx", 2),
    "How many units of the Falcon drill are in stock?": ("inventory.csv", None),
    "Which port does the metrics exporter listen on?": ("guide.html", None),
}


def write_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pages = [
        ("Overview", "This report describes the Zephyr wind turbine program, started in 2019 to "
                     "supply the northern plant with renewable electricity."),
        ("Performance", "At rated wind speed the Zephyr turbine produces 4.2 megawatts of "
                        "electrical power, enough for about three thousand homes."),
        ("Safety", "The emergency valve of the Zephyr turbine is painted bright orange so that "
                   "technicians can find it quickly in the dark."),
    ]
    for title, body in pages:
        pdf.add_page()
        pdf.start_section(title)
        pdf.cell(text=title, new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 8, body)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Orion crane specifications", level=1)
    document.add_paragraph("The Orion crane is a tower crane for large building sites.")
    document.add_heading("Capacity", level=2)
    document.add_paragraph("The maximum load of the Orion crane is 18 tonnes at a radius of 20 metres.")
    document.save(str(path))


def write_pptx(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body in [
        ("Quarterly review", "Sales overview for the first half of the year."),
        ("Second quarter results", "The Nordic region had the highest sales growth in the second "
                                   "quarter, rising 31 percent."),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.slide_width = Inches(10)
    deck.save(str(path))


def write_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    first.title = "Staff"
    first.append(["Team", "Headcount"])
    first.append(["Support", 12])
    second = book.create_sheet("Hardware")
    second.append(["Item", "Budget (EUR)"])
    second.append(["Server hardware", 84000])
    second.append(["Laptops", 23000])
    book.save(str(path))


def write_corpus(root: Path) -> Path:
    """Write every supported format under `root`; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "handbook.md").write_text(
        "# Employee handbook\n\n## Leave\n\nEmployees get 25 days of paid leave per year. Unused "
        "days may be carried over until March.\n\n## Expenses\n\nTravel expenses are reimbursed "
        "within 30 days of submitting the receipt.\n", encoding="utf-8")
    (root / "guide.html").write_text(
        "<html><body><h1>Monitoring guide</h1><p>Install the exporter package first.</p>"
        "<h2>Metrics exporter</h2><p>The metrics exporter listens on port 9187 and serves "
        "Prometheus text format.</p></body></html>", encoding="utf-8")
    (root / "inventory.csv").write_text(
        "product,warehouse,units\nFalcon drill,Lyon,140\nHeron saw,Porto,75\n", encoding="utf-8")
    legacy = root / "legacy"
    legacy.mkdir(exist_ok=True)
    (legacy / "gbk.txt").write_bytes(
        "年假制度\n\n公司员工每年享有十五天带薪年假，未使用的年假可以顺延到下一年度。".encode("gbk"))
    (legacy / "big5.txt").write_bytes(
        "報銷規定\n\n差旅費用必須在出差結束後三十日內提交報銷申請，逾期不予受理。".encode("big5"))
    (legacy / "utf16.txt").write_text(
        "Parking\n\nVisitors park in the blue zone behind building C.", encoding="utf-16")
    write_pdf(root / "reports" / "turbine.pdf")
    write_docx(root / "specs.docx")
    write_pptx(root / "deck.pptx")
    write_xlsx(root / "budget.xlsx")
    return root
