"""Scrapy (Debian's python3-scrapy) on the benchmark site, for comparison.

    /usr/bin/python3 bench/scrape_spider.py BASE_URL chain|details CONCURRENCY

Same job as scrapekeep's: chain follows rel=next over /chain (300 pages,
items: title, price); details follows /listing (50 pages) and each item's
detail page (1000, field: description). Settings as a user tuning for speed
would set them: no robots.txt, no autothrottle, no delay, concurrency equal to
scrapekeep's detail concurrency, LOG_LEVEL WARNING. Items are yielded, not
stored. Prints one line:
    pages=N items=N seconds=S pages_per_s=X
with seconds from Scrapy's own start_time to finish_time stats.
"""

import sys

import scrapy
from scrapy.crawler import CrawlerProcess


class ListingSpider(scrapy.Spider):
    name = "bench"

    def __init__(self, start_url, want_details, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        self.want_details = want_details

    def parse(self, response):
        for item in response.xpath("//article[@class='property']"):
            fields = {
                "title": item.xpath("normalize-space(.//h2)").get(),
                "price": item.xpath("normalize-space(.//span[@class='price'])").get(),
            }
            if self.want_details:
                href = item.xpath(".//h2/a/@href").get()
                if href:
                    yield response.follow(href, self.parse_detail, cb_kwargs={"fields": fields})
                    continue
            yield fields
        next_href = response.xpath("//a[@rel='next']/@href | //link[@rel='next']/@href").get()
        if next_href:
            yield response.follow(next_href, self.parse)

    def parse_detail(self, response, fields):
        fields["description"] = response.xpath("normalize-space(//p[@class='desc'])").get()
        yield fields


def main():
    base, job, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    details = job == "details"
    start_url = base + ("/listing?page=1" if details else "/chain?page=1")
    process = CrawlerProcess(
        settings={
            "ROBOTSTXT_OBEY": False,
            "AUTOTHROTTLE_ENABLED": False,
            "DOWNLOAD_DELAY": 0,
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "LOG_LEVEL": "WARNING",
            "TELNETCONSOLE_ENABLED": False,
            "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        }
    )
    crawler = process.create_crawler(ListingSpider)
    process.crawl(crawler, start_url=start_url, want_details=details)
    process.start()
    stats = crawler.stats.get_stats()
    pages = stats.get("response_received_count", 0)
    items = stats.get("item_scraped_count", 0)
    seconds = (stats["finish_time"] - stats["start_time"]).total_seconds()
    print(f"pages={pages} items={items} seconds={seconds:.3f} pages_per_s={pages / seconds:.1f}")


if __name__ == "__main__":
    main()
