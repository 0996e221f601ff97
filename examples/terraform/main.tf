# A DynamoDB table for reqwest-dynamodb-cache, and IAM policies for the roles that use it.
# Build the store with `.create_table(false)` when the table is managed here.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "table_name" {
  description = "Must match DynamoDbStore::builder().table_name(..)"
  type        = string
  default     = "http_cache"
}

resource "aws_dynamodb_table" "http_cache" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "key"

  attribute {
    name = "key"
    type = "S"
  }

  # DynamoDB deletes items after their `ttl` (epoch seconds), within a few days.
  # Remove this block if the store is built with `.ttl(false)`.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
}

variable "bodies_bucket" {
  description = "A bucket for bodies too large for one item (feature `s3`, S3Bodies::new(client, name)); empty for none"
  type        = string
  default     = ""
}

variable "bodies_prefix" {
  description = "Must match S3Bodies::prefix (default `http-cache/`)"
  type        = string
  default     = "http-cache/"
}

variable "bodies_expire_days" {
  description = "Days after which the lifecycle rule deletes an object whatever its entry (DynamoDB's TTL does not reach S3); an entry kept longer loses its body and is fetched again"
  type        = number
  default     = 7
}

locals {
  bodies = var.bodies_bucket == "" ? 0 : 1
}

resource "aws_s3_bucket" "bodies" {
  count  = local.bodies
  bucket = var.bodies_bucket
}

resource "aws_s3_bucket_public_access_block" "bodies" {
  count                   = local.bodies
  bucket                  = aws_s3_bucket.bodies[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "bodies" {
  count  = local.bodies
  bucket = aws_s3_bucket.bodies[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "bodies" {
  count  = local.bodies
  bucket = aws_s3_bucket.bodies[0].id
  rule {
    id     = "expire-cached-bodies"
    status = "Enabled"
    filter {
      prefix = var.bodies_prefix
    }
    expiration {
      days = var.bodies_expire_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# What the cache needs at run time (with `.create_table(false)`): invalidation writes a
# tombstone (PutItem), so no DeleteItem; the objects only under the prefix.
data "aws_iam_policy_document" "cache_read_write" {
  statement {
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.http_cache.arn]
  }
  dynamic "statement" {
    for_each = aws_s3_bucket.bodies
    content {
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = ["${statement.value.arn}/${var.bodies_prefix}*"]
    }
  }
}

# Maintenance (the CLI's purge and clear, `delete_url`): scans and batch deletes, and the
# objects of what they delete.
data "aws_iam_policy_document" "cache_maintenance" {
  statement {
    actions   = ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:BatchWriteItem"]
    resources = [aws_dynamodb_table.http_cache.arn]
  }
  dynamic "statement" {
    for_each = aws_s3_bucket.bodies
    content {
      actions   = ["s3:GetObject", "s3:DeleteObject"]
      resources = ["${statement.value.arn}/${var.bodies_prefix}*"]
    }
  }
}

resource "aws_iam_policy" "cache_maintenance" {
  name   = "${var.table_name}-maintenance"
  policy = data.aws_iam_policy_document.cache_maintenance.json
}

resource "aws_iam_policy" "cache_read_write" {
  name   = "${var.table_name}-read-write"
  policy = data.aws_iam_policy_document.cache_read_write.json
}

output "table_arn" {
  value = aws_dynamodb_table.http_cache.arn
}
